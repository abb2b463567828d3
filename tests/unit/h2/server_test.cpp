// serve_h2 (cleartext HTTP/2 with prior knowledge, h2c) over real in-process loopback sockets,
// with the project's own h2::connection on both far ends: a client-role connection as the
// workload, a server-role connection as the origin (named in proxy.upstream_h2c, so spoken to in h2c).
// Each stream is one exchange through the driver: what the client got and the audit records.
#include "h2/server.hpp"

#include <list>
#include <memory>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "h2/connection.hpp"
#include "h2/transport.hpp"
#include "net/client_socket.hpp"
#include "net/watchdog.hpp"
#include "support/loopback.hpp"
#include "support/test_proxy.hpp"

namespace iron::h2 {
namespace {

namespace asio = boost::asio;
using test::tcp;
using namespace std::chrono_literals;

// An h2c origin answering every request with 200 and "h2 ok: <path>". Its sockets are the
// test's, so the test can close them and let every loop end.
class h2_origin {
public:
    explicit h2_origin(asio::io_context& io) : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(io, accept_loop(), asio::detached);
    }
    std::string authority() const { return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
    int connections() const { return static_cast<int>(sockets_.size()); }
    int requests = 0;
    void close() {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        for (auto& s : sockets_) s.close(ignored);
    }

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, sock] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            tcp::socket& s = sockets_.emplace_back(std::move(sock));
            auto c = std::make_shared<connection>(connection::role::server, s.get_executor(),
                                                  std::make_unique<stream_transport<tcp::socket&>>(s), settings{});
            c->on_request([this](std::shared_ptr<connection> self, std::shared_ptr<stream> st) {
                ++requests;
                const std::string* path = find_header(st->headers(), ":path");
                self->submit_response(*st, {{":status", "200"}, {"content-type", "text/plain"}}, true);
                asio::co_spawn(self->executor(), answer(st, "h2 ok: " + (path ? *path : std::string())), asio::detached);
            });
            asio::co_spawn(s.get_executor(), run(c), asio::detached);
        }
    }
    static asio::awaitable<void> answer(std::shared_ptr<stream> st, std::string body) {
        co_await st->write(body);
        st->finish();
    }
    static asio::awaitable<void> run(std::shared_ptr<connection> c) { co_await c->run(0s, 0s); }

    tcp::acceptor acceptor_;
    std::list<tcp::socket> sockets_;
};

struct h2_response {
    std::string status;
    std::string body;
    bool reset = false;
};

class h2_server_test : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(proxy_.ok()); }
    void TearDown() override {
        origin_.close();
        test::run_until(io_, [] { return false; }, 100ms);  // let the closed connections wind down
    }

    static asio::awaitable<void> serve(tcp::socket sock, runtime::connection_info conn, bool& done) {
        net::client_socket client(std::move(sock));
        net::watchdog dog = net::closing_watchdog(client);
        co_await serve_h2(client, conn, dog);
        done = true;
    }
    static asio::awaitable<void> run_client(std::shared_ptr<connection> c, bool& done) {
        co_await c->run(0s, 0s);
        done = true;
    }
    static asio::awaitable<void> fetch(std::shared_ptr<connection> c, header_block head, h2_response& out, int& left) {
        std::string error;
        auto s = c->submit_request(head, false, error);
        if (s && co_await s->wait_headers()) {
            const std::string* status = find_header(s->headers(), ":status");
            out.status = status ? *status : "";
            for (std::string piece;;) {
                const auto r = co_await s->read(piece);
                if (r == stream::read_status::data) out.body += piece;
                if (r == stream::read_status::reset) out.reset = true;
                if (r != stream::read_status::data) break;
            }
        } else {
            out.reset = true;
        }
        --left;
    }

    // Opens one h2c connection through the proxy, sends each request as a stream at once, and
    // closes the connection once every response is in.
    std::vector<h2_response> exchange(const std::vector<header_block>& requests) {
        auto pair = test::connected_pair(io_);
        bool served = false, client_done = false;
        int left = static_cast<int>(requests.size());
        std::vector<h2_response> out(requests.size());
        asio::co_spawn(io_, serve(std::move(pair.server), proxy_.connection(), served), asio::detached);
        auto c = std::make_shared<connection>(connection::role::client, io_.get_executor(),
                                              std::make_unique<stream_transport<tcp::socket&>>(pair.client), settings{});
        asio::co_spawn(io_, run_client(c, client_done), asio::detached);
        for (std::size_t i = 0; i < requests.size(); ++i)
            asio::co_spawn(io_, fetch(c, requests[i], out[i], left), asio::detached);
        EXPECT_TRUE(test::run_until(io_, [&] { return left == 0; })) << "responses did not arrive in time";
        boost::system::error_code ignored;
        pair.client.close(ignored);
        EXPECT_TRUE(test::run_until(io_, [&] { return served && client_done; })) << "the connection did not end";
        return out;
    }

    static header_block get(const std::string& authority, const std::string& path) {
        return {{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", path}};
    }

    asio::io_context io_;
    h2_origin origin_{io_};
    // The origin speaks h2c, which a cleartext origin is only assumed to when configured.
    test::test_proxy proxy_{io_, test::proxy_options{.proxy_keys = "  upstream_h2c: ['127.0.0.1']\n"}};
};

TEST_F(h2_server_test, two_streams_on_one_connection_are_two_exchanges_and_two_records) {
    const auto got = exchange({get(origin_.authority(), "/one"), get(origin_.authority(), "/two")});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].status, "200");
    EXPECT_EQ(got[0].body, "h2 ok: /one");
    EXPECT_EQ(got[1].status, "200");
    EXPECT_EQ(got[1].body, "h2 ok: /two");
    EXPECT_EQ(origin_.requests, 2);
    EXPECT_EQ(origin_.connections(), 1) << "both streams share one upstream HTTP/2 connection";
    auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 2u);
    for (const auto& r : recs) {
        EXPECT_EQ(r.action, audit::action::allow);
        EXPECT_EQ(r.status_code, 200);
        EXPECT_EQ(r.host, origin_.authority());
    }
}

TEST_F(h2_server_test, a_denied_stream_gets_403_before_any_dial_and_the_other_is_served) {
    const auto got = exchange({get("denied.test", "/no"), get(origin_.authority(), "/yes")});
    EXPECT_EQ(got[0].status, "403");
    EXPECT_EQ(got[1].status, "200");
    EXPECT_EQ(origin_.requests, 1);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 2u);
    int rejected = 0;
    for (const auto& r : recs)
        if (r.host == "denied.test") {
            ++rejected;
            EXPECT_EQ(r.action, audit::action::reject);
            EXPECT_EQ(r.rejected_by, "allowlist");
        }
    EXPECT_EQ(rejected, 1);
}

TEST_F(h2_server_test, a_host_field_disagreeing_with_authority_is_a_400) {
    auto head = get(origin_.authority(), "/x");
    head.push_back({"host", "denied.test"});
    const auto got = exchange({head});
    EXPECT_EQ(got[0].status, "400");
    EXPECT_EQ(origin_.requests, 0);
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].status_code, 400);
    EXPECT_EQ(recs[0].error, "Host header disagrees with :authority");
}

TEST_F(h2_server_test, a_refused_dial_is_a_502_on_its_stream) {
    std::uint16_t port = 0;
    {
        tcp::acceptor closed(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = closed.local_endpoint().port();
    }
    const auto got = exchange({get("127.0.0.1:" + std::to_string(port), "/")});
    EXPECT_EQ(got[0].status, "502");
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].action, audit::action::error);
    EXPECT_NE(recs[0].error.find("connection refused"), std::string::npos) << recs[0].error;
}

}  // namespace
}  // namespace iron::h2
