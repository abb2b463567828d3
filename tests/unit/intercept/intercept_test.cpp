// The HTTPS listener's first steps over real in-process loopback sockets: the first-byte sniff,
// the MITM handshake and tls.mode sni-only, for connections that never become an HTTP request —
// each must still leave exactly one audit record saying why.
#include "intercept/intercept.hpp"

#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "net/tls_stream.hpp"
#include "support/loopback.hpp"
#include "support/test_proxy.hpp"
#include "tls/contexts.hpp"

namespace iron::intercept {
namespace {

namespace asio = boost::asio;
using test::tcp;

class intercept_test : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(proxy_->ok()); }

    void use_mode(const std::string& mode) {
        proxy_.reset();
        proxy_ = std::make_unique<test::test_proxy>(io_, test::proxy_options{test::allow_loopback, "", mode, &ca_});
        ASSERT_TRUE(proxy_->ok());
    }

    asio::awaitable<void> serve(tcp::socket sock, tcp::endpoint peer, bool& done) {
        co_await serve_https_listener(std::move(sock), peer, proxy_->shared, &proxy_->worker);
        done = true;
    }

    // Raw bytes to the HTTPS listener; what came back before it closed.
    std::string send_raw(std::string bytes) {
        auto pair = test::connected_pair(io_);
        bool served = false, read = false;
        std::string got;
        asio::co_spawn(io_, serve(std::move(pair.server), pair.client_endpoint, served), asio::detached);
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            co_await test::send_bytes(pair.client, std::move(bytes));
            got = co_await test::read_to_eof(pair.client);
            read = true;
        }, asio::detached);
        EXPECT_TRUE(test::run_until(io_, [&] { return served && read; }));
        return got;
    }

    // A TLS client handshake offering `sni` ("" or an IP literal: none); whether it completed.
    bool handshake(const std::string& sni) {
        auto pair = test::connected_pair(io_);
        auto ctx = ca_.asio_client_context();
        net::tls_stream<tcp::socket> client(std::move(pair.client), ctx);
        if (!sni.empty()) EXPECT_TRUE(tls::prepare_client_ssl(client.native_handle(), sni));
        bool served = false, finished = false, ok = false;
        asio::co_spawn(io_, serve(std::move(pair.server), pair.client_endpoint, served), asio::detached);
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            auto [ec] = co_await client.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
            ok = !ec;
            boost::system::error_code ignored;
            client.lowest_layer().close(ignored);  // a completed handshake: leave without a request
            finished = true;
        }, asio::detached);
        EXPECT_TRUE(test::run_until(io_, [&] { return served && finished; }));
        return ok;
    }

    asio::io_context io_;
    test::test_ca ca_;
    std::unique_ptr<test::test_proxy> proxy_ =
        std::make_unique<test::test_proxy>(io_, test::proxy_options{test::allow_loopback, "", "mitm", &ca_});
};

TEST_F(intercept_test, plain_http_to_the_https_listener_gets_400_and_a_record) {
    const std::string got = send_raw("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 400 ", 0), 0u) << got;
    const auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error, "client sent an HTTP request to an HTTPS server");
}

TEST_F(intercept_test, an_unknown_protocol_is_recorded_with_its_first_byte) {
    send_raw(std::string("\x01\x02\x03", 3));
    const auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].error, "unsupported protocol (first byte 0x01)");
}

TEST_F(intercept_test, a_mitm_handshake_without_sni_fails_and_is_recorded) {
    EXPECT_FALSE(handshake("127.0.0.1")) << "an IP literal sends no SNI: no leaf to mint";
    const auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error.rfind("tls handshake: client hello missing sni or handshake failed: ", 0), 0u)
        << recs[0].error;
}

TEST_F(intercept_test, a_mitm_connection_closed_after_the_handshake_leaves_no_record) {
    EXPECT_TRUE(handshake("allowed.test"));
    EXPECT_TRUE(proxy_->records().empty()) << "no request was made";
}

TEST_F(intercept_test, sni_only_refuses_a_denied_name_with_a_record_and_no_dial) {
    use_mode("sni-only");
    EXPECT_FALSE(handshake("denied.test"));
    const auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].mode, "sni-only");
    EXPECT_EQ(recs[0].host, "denied.test");
    EXPECT_EQ(recs[0].sni, "denied.test");
    EXPECT_EQ(recs[0].action, audit::action::reject);
    EXPECT_EQ(recs[0].status_code, 403);
    EXPECT_EQ(recs[0].rejected_by, "allowlist");
}

TEST_F(intercept_test, sni_only_refuses_a_hello_without_sni) {
    use_mode("sni-only");
    EXPECT_FALSE(handshake("127.0.0.1"));
    const auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].mode, "sni-only");
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error, "client hello missing sni");
}

TEST_F(intercept_test, sni_only_refuses_bytes_that_are_no_client_hello) {
    use_mode("sni-only");
    send_raw(std::string("\x16\x03\x01\x00\x05hello", 10));
    const auto recs = proxy_->records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error, "unparseable client hello");
}

}  // namespace
}  // namespace iron::intercept
