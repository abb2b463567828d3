// serve_http, the HTTP/1.1 client side, over real in-process loopback sockets: raw request bytes
// from a test client, a fake origin on 127.0.0.1 answering fixed bytes, and the proxy's runtime
// built as app.cpp builds it. Each test checks what the client got, what the origin saw, whether
// the upstream connection went back to the pool, and the audit records.
#include "http/session.hpp"

#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "net/client_socket.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"
#include "support/loopback.hpp"
#include "support/test_proxy.hpp"
#include "tls/contexts.hpp"

namespace iron::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using test::tcp;
using response = beast::http::response<beast::http::string_body>;

asio::awaitable<void> serve_plain(tcp::socket sock, runtime::connection_info conn, bool& done) {
    net::client_socket client(std::move(sock));
    net::watchdog dog = net::closing_watchdog(client);
    co_await serve_http(client, conn, dog);
    done = true;
}

// The client's side of a conversation: what it sends, and the responses it read back.
struct exchange_log {
    std::vector<response> responses;
    std::string after;  // what came after the last response, up to the proxy's close
    bool done = false;
};

// Sends each request and reads its response, then ends its side and reads to the close.
asio::awaitable<void> converse(tcp::socket& sock, std::vector<std::string> requests, exchange_log& log) {
    beast::flat_buffer buf;
    for (auto& r : requests) {
        if (!co_await test::send_bytes(sock, std::move(r))) break;
        response res;
        auto [ec, n] = co_await beast::http::async_read(sock, buf, res, asio::as_tuple(asio::use_awaitable));
        if (ec) break;
        log.responses.push_back(std::move(res));
    }
    boost::system::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_send, ignored);
    log.after = std::string(static_cast<const char*>(buf.data().data()), buf.size()) + co_await test::read_to_eof(sock);
    log.done = true;
}

class session_test : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(proxy_.ok()); }

    // One client connection served by serve_http until both sides are done (bounded).
    exchange_log run(std::vector<std::string> requests) {
        auto pair = test::connected_pair(io_);
        bool served = false;
        exchange_log log;
        asio::co_spawn(io_, serve_plain(std::move(pair.server), proxy_.connection(), served), asio::detached);
        asio::co_spawn(io_, converse(pair.client, std::move(requests), log), asio::detached);
        EXPECT_TRUE(test::run_until(io_, [&] { return served && log.done; })) << "the session did not end in time";
        return log;
    }

    std::string get(const std::string& path, const std::string& host) {
        return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    }

    asio::io_context io_;
    test::fake_origin origin_{io_, [](const std::string&) { return test::fake_origin::ok("ok"); }};
    test::test_proxy proxy_{io_};
};

TEST_F(session_test, keep_alive_serves_two_requests_on_one_connection_with_two_records) {
    const auto log = run({get("/a", origin_.authority()), get("/b?x=1", origin_.authority())});
    ASSERT_EQ(log.responses.size(), 2u);
    for (const auto& r : log.responses) {
        EXPECT_EQ(r.result_int(), 200);
        EXPECT_EQ(r.body(), "ok");
        EXPECT_TRUE(r.keep_alive());
    }
    EXPECT_EQ(origin_.connections(), 1) << "the second request reused the pooled upstream connection";
    ASSERT_EQ(origin_.requests().size(), 2u);
    EXPECT_EQ(origin_.requests()[1].rfind("GET /b?x=1 HTTP/1.1\r\n", 0), 0u) << origin_.requests()[1];
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].path, "/a");
    EXPECT_EQ(recs[1].path, "/b");
    for (const auto& r : recs) {
        EXPECT_EQ(r.action, audit::action::allow);
        EXPECT_EQ(r.status_code, 200);
        EXPECT_EQ(r.method, "GET");
        EXPECT_EQ(r.host, origin_.authority());
    }
    EXPECT_EQ(proxy_.audit_lines().size(), 2u);
    EXPECT_EQ(proxy_.pool().idle_count(), 1u);
}

TEST_F(session_test, a_malformed_head_gets_400_a_record_and_the_connection_closes) {
    const auto log = run({"GET /a HTTP/1.1\r\nHost: " + origin_.authority() + "\r\nno colon here\r\n\r\n"});
    ASSERT_EQ(log.responses.size(), 1u);
    EXPECT_EQ(log.responses[0].result_int(), 400);
    EXPECT_FALSE(log.responses[0].keep_alive());
    EXPECT_EQ(origin_.connections(), 0);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error.rfind("malformed request: ", 0), 0u) << recs[0].error;
}

TEST_F(session_test, a_denied_host_is_refused_before_any_dial) {
    const auto log = run({get("/", "denied.test")});
    ASSERT_EQ(log.responses.size(), 1u);
    EXPECT_EQ(log.responses[0].result_int(), 403);
    EXPECT_EQ(origin_.connections(), 0);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].rejected_by, "allowlist");
    EXPECT_EQ(recs[0].host, "denied.test");
}

TEST_F(session_test, an_absolute_form_target_replaces_host) {
    const auto log =
        run({"GET http://" + origin_.authority() + "/abs?q=1 HTTP/1.1\r\nHost: denied.test\r\n\r\n"});
    ASSERT_EQ(log.responses.size(), 1u);
    EXPECT_EQ(log.responses[0].result_int(), 200) << "policy saw the target's authority, not the Host line";
    ASSERT_EQ(origin_.requests().size(), 1u);
    const std::string& seen = origin_.requests()[0];
    EXPECT_EQ(seen.rfind("GET /abs?q=1 HTTP/1.1\r\n", 0), 0u) << seen;
    EXPECT_NE(seen.find("Host: " + origin_.authority() + "\r\n"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("denied.test"), std::string::npos) << "exactly one Host, the one policy saw";
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].host, origin_.authority());
    EXPECT_EQ(recs[0].path, "/abs");
}

TEST_F(session_test, a_refused_dial_is_a_502_with_the_reason_in_the_record) {
    // A port nothing listens on: bind one, note it, close it.
    std::uint16_t port = 0;
    {
        tcp::acceptor closed(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = closed.local_endpoint().port();
    }
    const auto log = run({get("/", "127.0.0.1:" + std::to_string(port))});
    ASSERT_EQ(log.responses.size(), 1u);
    EXPECT_EQ(log.responses[0].result_int(), 502);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::error);
    EXPECT_EQ(recs[0].status_code, 502);
    EXPECT_NE(recs[0].error.find("connection refused"), std::string::npos) << recs[0].error;
}

TEST_F(session_test, an_ambiguously_framed_response_is_a_502_and_its_connection_is_not_pooled) {
    test::fake_origin bad(io_, [](const std::string&) {
        return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello");
    });
    const auto log = run({get("/", bad.authority())});
    ASSERT_EQ(log.responses.size(), 1u);
    EXPECT_EQ(log.responses[0].result_int(), 502);
    EXPECT_EQ(log.responses[0].body().find("hello"), std::string::npos) << "nothing of that response reaches the client";
    EXPECT_EQ(proxy_.pool().idle_count(), 0u) << "a connection with an ambiguous body in it is never reused";
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::error);
    EXPECT_EQ(recs[0].status_code, 502);
    EXPECT_EQ(recs[0].error.rfind("ambiguous response framing: ", 0), 0u) << recs[0].error;
}

TEST_F(session_test, an_origin_closing_mid_body_cuts_the_client_and_keeps_the_status) {
    test::fake_origin cut(io_, [](const std::string&) {
        return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this");
    });
    const auto log = run({get("/", cut.authority())});
    EXPECT_TRUE(log.responses.empty()) << "the client's connection is cut: it never gets a whole response";
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::error);
    EXPECT_EQ(recs[0].status_code, 200);
    EXPECT_NE(recs[0].error.find("reading response body"), std::string::npos) << recs[0].error;
    EXPECT_EQ(proxy_.pool().idle_count(), 0u);
}

TEST_F(session_test, a_client_closing_before_a_request_leaves_no_record) {
    const auto log = run({});
    EXPECT_TRUE(log.responses.empty());
    EXPECT_TRUE(proxy_.records().empty());
}

// The TLS instantiation: MITM with a leaf from the shared test CA, and the SNI/Host check.
class tls_session_test : public ::testing::Test {
protected:
    static asio::awaitable<void> serve_tls(tcp::socket sock, runtime::connection_info conn, asio::ssl::context& ctx,
                                           bool& done) {
        net::tls_stream<net::client_socket> tls(net::client_socket(std::move(sock)), ctx);
        net::watchdog dog = net::closing_watchdog(tls.next_layer());
        auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
        if (!ec) {
            conn.tls = true;
            const char* sni = SSL_get_servername(tls.native_handle(), TLSEXT_NAMETYPE_host_name);
            conn.sni = sni ? sni : "";
            co_await serve_http(tls, conn, dog);
        }
        done = true;
    }

    // One request over TLS with `sni`; the response (status 0: none).
    response request(const std::string& sni, const std::string& host) {
        auto pair = test::connected_pair(io_);
        auto server_ctx = ca_.asio_server_context();
        auto client_ctx = ca_.asio_client_context();
        net::tls_stream<tcp::socket> client(std::move(pair.client), client_ctx);
        EXPECT_TRUE(tls::prepare_client_ssl(client.native_handle(), sni));
        bool served = false, finished = false;
        response res;
        asio::co_spawn(io_, serve_tls(std::move(pair.server), proxy_.connection(), server_ctx, served), asio::detached);
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            auto [hec] = co_await client.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
            EXPECT_FALSE(hec) << hec.message();
            const std::string req = "GET /t HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
            auto [wec, wn] = co_await asio::async_write(client, asio::buffer(req), asio::as_tuple(asio::use_awaitable));
            beast::flat_buffer buf;
            auto [rec, rn] = co_await beast::http::async_read(client, buf, res, asio::as_tuple(asio::use_awaitable));
            finished = true;
        }, asio::detached);
        EXPECT_TRUE(test::run_until(io_, [&] { return served && finished; }));
        return res;
    }

    asio::io_context io_;
    test::test_ca ca_;
    test::fake_origin origin_{io_, [](const std::string&) { return test::fake_origin::ok("tls ok"); }};
    test::test_proxy proxy_{io_, test::proxy_options{test::allow_loopback, "", "mitm", &ca_}};
};

// (An allowed request over TLS would dial a name, which needs DNS: the e2e tests cover that.)
TEST_F(tls_session_test, a_host_other_than_the_sni_is_refused_before_policy) {
    const auto res = request("allowed.test", "other.test");
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(origin_.connections(), 0);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].sni, "allowed.test");
    EXPECT_EQ(recs[0].host, "other.test");
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error, "SNI and Host header mismatch");
    EXPECT_TRUE(recs[0].request_transforms.empty()) << "no transform saw a fronted request";
}

TEST_F(tls_session_test, a_denied_name_is_refused_over_tls_with_its_sni_recorded) {
    const auto res = request("denied.test", "denied.test");
    EXPECT_EQ(res.result_int(), 403);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].sni, "denied.test");
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].rejected_by, "allowlist");
}

}  // namespace
}  // namespace iron::http
