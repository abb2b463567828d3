#include "tunnel/socks5.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace iron::tunnel::socks5;

namespace {
std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int v : b) s.push_back(static_cast<char>(v));
    return s;
}
}  // namespace

TEST(Socks5Greeting, NoAuthOffered) {
    auto g = parse_greeting(bytes({5, 2, 2, 0}));
    EXPECT_EQ(g.state, status::ok);
    EXPECT_TRUE(g.no_auth_offered);
    EXPECT_EQ(g.consumed, 4u);
}

TEST(Socks5Greeting, OnlyUserPass) {
    auto g = parse_greeting(bytes({5, 1, 2}));
    EXPECT_EQ(g.state, status::ok);
    EXPECT_FALSE(g.no_auth_offered);
}

TEST(Socks5Greeting, NeedsMoreAndInvalid) {
    EXPECT_EQ(parse_greeting(bytes({5})).state, status::need_more);
    EXPECT_EQ(parse_greeting(bytes({5, 3, 0})).state, status::need_more);
    EXPECT_EQ(parse_greeting(bytes({4, 1, 0})).state, status::invalid);
    EXPECT_EQ(parse_greeting(bytes({5, 0})).state, status::invalid);
}

TEST(Socks5Request, IPv4) {
    auto r = parse_request(bytes({5, 1, 0, 1, 127, 0, 0, 2, 0x1f, 0x90, 0xAA}));
    ASSERT_EQ(r.state, status::ok);
    EXPECT_EQ(r.reply, rep::succeeded);
    EXPECT_EQ(r.host, "127.0.0.2");
    EXPECT_EQ(r.port, 8080);
    EXPECT_EQ(r.consumed, 10u);  // the trailing 0xAA is pipelined tunnel data, not consumed
    EXPECT_EQ(r.authority(), "127.0.0.2:8080");
}

TEST(Socks5Request, DomainAndIPv6) {
    std::string d = bytes({5, 1, 0, 3, 11}) + "example.com" + bytes({1, 187});
    auto r = parse_request(d);
    ASSERT_EQ(r.state, status::ok);
    EXPECT_EQ(r.host, "example.com");
    EXPECT_EQ(r.port, 443);
    std::string v6 = bytes({5, 1, 0, 4}) + std::string(15, '\0') + bytes({1, 0, 80});
    auto r6 = parse_request(v6);
    ASSERT_EQ(r6.state, status::ok);
    EXPECT_EQ(r6.host, "::1");
    EXPECT_EQ(r6.authority(), "[::1]:80");
}

TEST(Socks5Request, RefusalsAndPartials) {
    EXPECT_EQ(parse_request(bytes({5, 2, 0, 1, 1, 2, 3, 4, 0, 80})).reply, rep::command_not_supported);
    EXPECT_EQ(parse_request(bytes({5, 1, 0, 9, 1, 2})).reply, rep::address_type_not_supported);
    EXPECT_EQ(parse_request(bytes({5, 1, 0, 3, 0, 0, 80})).reply, rep::general_failure);  // empty name
    EXPECT_EQ(parse_request(bytes({5, 1, 0, 1, 1, 2})).state, status::need_more);
    EXPECT_EQ(parse_request(bytes({4, 1, 0, 1, 1, 2, 3, 4, 0, 80})).state, status::invalid);
}

TEST(Socks5Replies, RfcShapes) {
    auto m = method_reply(false);
    EXPECT_EQ(m[0], 5);
    EXPECT_EQ(m[1], 0xFF);
    auto r = reply(rep::not_allowed);
    EXPECT_EQ(r.size(), 10u);
    EXPECT_EQ(r[1], rep::not_allowed);
    EXPECT_EQ(r[3], 1);
}

TEST(Socks5Request, RandomBytesNeverCrash) {
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::string s(rng() % 40, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        if (!s.empty() && rng() % 2) s[0] = 5;
        auto r = parse_request(s);
        if (r.state == status::ok) EXPECT_LE(r.consumed, s.size());
        auto g = parse_greeting(s);
        if (g.state == status::ok) EXPECT_LE(g.consumed, s.size());
    }
}
