// The tunnel listener over real in-process loopback sockets: CONNECT and SOCKS5 handshakes as
// raw bytes, host-level policy on the target, the handshake's own audit record, and the inner
// request served (and audited again, with the tunnel's target) through intercept::serve.
#include "tunnel/tunnel.hpp"

#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "support/loopback.hpp"
#include "support/test_proxy.hpp"

namespace iron::tunnel {
namespace {

namespace asio = boost::asio;
using test::tcp;

// The client's side: each message sent in turn, and after each, what came back until the reply
// looks whole (`until` found) or the proxy closed.
struct step {
    std::string send;
    std::string until;  // empty: read to the close
};

asio::awaitable<void> talk(tcp::socket& sock, std::vector<step> steps, std::vector<std::string>& got, bool& done) {
    std::string buf;
    for (auto& s : steps) {
        if (!co_await test::send_bytes(sock, std::move(s.send))) break;
        if (s.until.empty()) {
            boost::system::error_code ignored;
            sock.shutdown(tcp::socket::shutdown_send, ignored);
            got.push_back(buf + co_await test::read_to_eof(sock));
            break;
        }
        auto [ec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), s.until,
                                                       asio::as_tuple(asio::use_awaitable));
        got.push_back(buf.substr(0, ec ? buf.size() : n));
        buf.erase(0, ec ? buf.size() : n);
        if (ec) break;
    }
    done = true;
}

class tunnel_test : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(proxy_.ok()); }

    std::vector<std::string> run(std::vector<step> steps) {
        auto pair = test::connected_pair(io_);
        bool served = false, talked = false;
        std::vector<std::string> got;
        asio::co_spawn(io_, serve(std::move(pair.server), pair.client_endpoint, served), asio::detached);
        asio::co_spawn(io_, talk(pair.client, std::move(steps), got, talked), asio::detached);
        EXPECT_TRUE(test::run_until(io_, [&] { return served && talked; })) << "the tunnel did not end in time";
        return got;
    }

    asio::awaitable<void> serve(tcp::socket sock, tcp::endpoint peer, bool& done) {
        co_await serve_tunnel_listener(std::move(sock), peer, proxy_.shared, &proxy_.worker);
        done = true;
    }

    std::string connect_head(const std::string& authority) {
        return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
    }

    asio::io_context io_;
    test::fake_origin origin_{io_, [](const std::string&) { return test::fake_origin::ok("inner"); }};
    test::test_proxy proxy_{io_};
};

TEST_F(tunnel_test, an_allowed_connect_is_established_and_the_inner_request_audited_with_its_tunnel) {
    const std::string target = origin_.authority();
    const auto got = run({{connect_head(target), "\r\n\r\n"},
                          {"GET /in HTTP/1.1\r\nHost: " + target + "\r\n\r\n", "inner"},
                          {"", ""}});
    ASSERT_GE(got.size(), 2u);
    EXPECT_EQ(got[0], "HTTP/1.1 200 Connection Established\r\n\r\n");
    EXPECT_EQ(got[1].rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got[1];
    ASSERT_EQ(origin_.requests().size(), 1u);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 2u) << "one record for the handshake, one for the request inside";
    EXPECT_EQ(recs[0].method, "CONNECT");
    EXPECT_EQ(recs[0].host, target);
    EXPECT_EQ(recs[0].action, audit::action::allow);
    EXPECT_EQ(recs[0].status_code, 200);
    EXPECT_EQ(recs[1].method, "GET");
    EXPECT_EQ(recs[1].path, "/in");
    EXPECT_EQ(recs[1].status_code, 200);
    ASSERT_TRUE(recs[1].tunnel);
    EXPECT_EQ(recs[1].tunnel->target, target);
}

TEST_F(tunnel_test, bytes_pipelined_behind_the_connect_head_are_served) {
    const std::string target = origin_.authority();
    const auto got = run({{connect_head(target) + "GET /p HTTP/1.1\r\nHost: " + target + "\r\n\r\n", "inner"}, {"", ""}});
    ASSERT_GE(got.size(), 1u);
    EXPECT_EQ(got[0].rfind("HTTP/1.1 200 Connection Established\r\n\r\nHTTP/1.1 200 OK\r\n", 0), 0u) << got[0];
    EXPECT_EQ(proxy_.records().size(), 2u);
}

TEST_F(tunnel_test, a_denied_connect_gets_403_and_one_record_and_nothing_is_dialed) {
    const auto got = run({{connect_head("denied.test:443"), ""}});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].rfind("HTTP/1.1 403 ", 0), 0u) << got[0];
    EXPECT_EQ(origin_.connections(), 0);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].method, "CONNECT");
    EXPECT_EQ(recs[0].host, "denied.test:443");
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].status_code, 403);
    EXPECT_EQ(recs[0].rejected_by, "allowlist");
}

TEST_F(tunnel_test, a_method_other_than_connect_gets_405_and_a_record) {
    const auto got = run({{"GET / HTTP/1.1\r\nHost: " + origin_.authority() + "\r\n\r\n", ""}});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << got[0];
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].status_code, 405);
    EXPECT_EQ(recs[0].error, "tunnel listener accepts only CONNECT");
    EXPECT_EQ(origin_.connections(), 0);
}

TEST_F(tunnel_test, a_malformed_handshake_gets_400_and_a_record) {
    const auto got = run({{"CONNECT\r\n\r\n", ""}});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].rfind("HTTP/1.1 400 ", 0), 0u) << got[0];
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].status_code, 400);
}

TEST_F(tunnel_test, a_client_leaving_without_a_byte_leaves_no_record) {
    const auto got = run({{"", ""}});
    EXPECT_TRUE(proxy_.records().empty());
}

std::string socks5_connect(const std::string& host, std::uint16_t port) {
    std::string req("\x05\x01\x00\x03", 4);
    req += static_cast<char>(host.size());
    req += host;
    req += static_cast<char>(port >> 8);
    req += static_cast<char>(port & 0xff);
    return req;
}

TEST_F(tunnel_test, socks5_to_an_allowed_address_is_served_and_a_denied_name_refused) {
    {
        std::string req("\x05\x01\x00\x01\x7f\x00\x00\x01", 8);
        req += static_cast<char>(origin_.port() >> 8);
        req += static_cast<char>(origin_.port() & 0xff);
        const auto got = run({{std::string("\x05\x01\x00", 3) + req +
                                   "GET /s HTTP/1.1\r\nHost: " + origin_.authority() + "\r\n\r\n",
                               "inner"},
                              {"", ""}});
        ASSERT_GE(got.size(), 1u);
        EXPECT_EQ(got[0].substr(0, 4), std::string("\x05\x00\x05\x00", 4)) << "method accepted, then succeeded";
        EXPECT_NE(got[0].find("HTTP/1.1 200 OK"), std::string::npos);
        const auto recs = proxy_.records();
        ASSERT_EQ(recs.size(), 2u);
        EXPECT_EQ(recs[0].host, origin_.authority());
        EXPECT_EQ(recs[0].action, audit::action::allow);
        ASSERT_TRUE(recs[1].tunnel);
        EXPECT_EQ(recs[1].path, "/s");
    }
    {
        const auto got = run({{std::string("\x05\x01\x00", 3) + socks5_connect("denied.test", 443), ""}});
        ASSERT_EQ(got.size(), 1u);
        ASSERT_GE(got[0].size(), 4u);
        EXPECT_EQ(got[0][3], '\x02') << "reply: connection not allowed by ruleset";
        const auto recs = proxy_.records();
        ASSERT_EQ(recs.size(), 3u);
        EXPECT_EQ(recs[2].host, "denied.test:443");
        EXPECT_EQ(recs[2].action, audit::action::reject);
        EXPECT_EQ(recs[2].rejected_by, "allowlist");
    }
}

}  // namespace
}  // namespace iron::tunnel
