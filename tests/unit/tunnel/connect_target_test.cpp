#include "tunnel/connect_target.hpp"

#include <gtest/gtest.h>

using namespace iron::tunnel;

TEST(ConnectTarget, HostAndPort) {
    auto t = parse_connect_target("Allowed.Test.:8443");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "allowed.test");
    EXPECT_EQ(t->authority, "Allowed.Test.:8443");
}

TEST(ConnectTarget, MissingPortIs443AndIpv6IsBracketed) {
    EXPECT_EQ(parse_connect_target("allowed.test")->authority, "allowed.test:443");
    auto v6 = parse_connect_target("[::1]:8443");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->authority, "[::1]:8443");
}

TEST(ConnectTarget, RejectsWhatIsNotAnAuthority) {
    for (const char* bad : {"", "/", "allowed.test/x", "user@allowed.test:443", ":443", "allowed.test:0",
                            "allowed.test:65536", "allowed.test:x", "allowed.test:443x"})
        EXPECT_FALSE(parse_connect_target(bad)) << bad;
}

// Found by tunnel_connect_fuzz: strtol accepted a sign, so "CONNECT allowed.test:+60" was allowed
// and audited with the authority "allowed.test:+60". A port is decimal digits, as in a Host header.
TEST(ConnectTarget, PortIsDigitsOnly) {
    EXPECT_FALSE(parse_connect_target("allowed.test:+60"));
    EXPECT_FALSE(parse_connect_target("allowed.test:-1"));
    EXPECT_FALSE(parse_connect_target("allowed.test: 60"));
}

TEST(ConnectTarget, FirstByteTellsSocks5FromConnect) {
    EXPECT_EQ(detect_handshake(0x05), handshake_protocol::socks5);
    EXPECT_EQ(detect_handshake('C'), handshake_protocol::http_connect);
    EXPECT_EQ(detect_handshake(0x16), handshake_protocol::http_connect);
}

// Found by tunnel_connect_fuzz (CI smoke, seed 1): "CONNECT [:\xff…ed.." was accepted with the
// unclosed bracket in the host, and a host ending in ".." normalised to another host on a second
// pass. A CONNECT host is RFC 3986 reg-name or IP-literal characters with no empty label.
TEST(ConnectTarget, HostIsPlainCharactersWithoutEmptyLabels) {
    for (const char* bad : {"[:\xff\xff" "ed..", "[::1", "allowed.test..:443", "a..b:443", "allow\xa0" "ed.test:443",
                            "allowed test:443", "allowed.test\r:443", "[::1]]:443", ".", ".:443"})
        EXPECT_FALSE(parse_connect_target(bad)) << bad;
    for (const char* good : {"allowed.test.:443", "my_host-1.test:80", "[fe80::1%25eth0]:443", "127.0.0.1:8080"})
        EXPECT_TRUE(parse_connect_target(good)) << good;
}

TEST(ConnectTarget, AbsoluteFormHttpRequestLine) {
    EXPECT_TRUE(is_absolute_http_request("GET http://allowed.test/echo HTTP/1.1\r\nHost: allowed.test\r\n"));
    EXPECT_TRUE(is_absolute_http_request("POST HTTP://a.test:8080/ HTTP/1.1\r\n"));
    EXPECT_TRUE(is_absolute_http_request("GET http://a.test HTTP/1.0\n"));
    // Not (yet) a whole request line: the caller reads more or lets the CONNECT parser decide.
    EXPECT_FALSE(is_absolute_http_request("GET http://allowed.test/echo HTTP/1.1"));
    for (const char* other : {"CONNECT http://a.test/ HTTP/1.1\r\n", "GET /echo HTTP/1.1\r\n",
                              "GET https://a.test/ HTTP/1.1\r\n", "GET * HTTP/1.1\r\n", "GET http:// HTTP/1.1\r\n",
                              "GET\r\n", "PRI * HTTP/2.0\r\n", "CONNECT a.test:443 HTTP/1.1\r\n"})
        EXPECT_FALSE(is_absolute_http_request(other)) << other;
}
