// upstream_conn::deadline: one watchdog per upstream connection, reused by every exchange on it,
// closing the connection when it fires and disarmed while the connection is pooled. And the pool's
// bookkeeping: most recently released first, stale connections dropped, limits kept.
#include "http/upstream.hpp"

#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include "core/cidr.hpp"
#include "net/dialer.hpp"
#include "net/resolver.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using iron::http::upstream_conn;

class UpstreamPool : public ::testing::Test {
protected:
    // An upstream_conn over a connected loopback socket (the other end is kept open).
    std::unique_ptr<upstream_conn> connected(std::string key = "k") {
        tcp::socket s(io_);
        s.connect(acceptor_.local_endpoint());
        peers_.push_back(acceptor_.accept());
        return std::make_unique<upstream_conn>(upstream_conn{std::move(s), {}, std::move(key), {}, false, nullptr});
    }
    std::unique_ptr<iron::http::upstream_pool> pool(iron::http::upstream_timeouts t = {}) {
        auto r = iron::net::resolver::create(io_.get_executor(), "127.0.0.1:1");
        EXPECT_TRUE(r) << r.message();
        resolver_ = std::move(*r);
        dialer_ = std::make_unique<iron::net::dialer>(*resolver_, deny_, 1000ms);
        router_ = std::make_unique<iron::upstream_proxy::router>(*dialer_, nullptr, 1000ms);
        return std::make_unique<iron::http::upstream_pool>(*router_, tls_, t);
    }
    void run_for(std::chrono::milliseconds d) {
        io_.restart();
        io_.run_for(d);
    }

    asio::io_context io_;
    std::unique_ptr<iron::net::resolver> resolver_;
    iron::core::deny_list deny_;
    std::unique_ptr<iron::net::dialer> dialer_;
    std::unique_ptr<iron::upstream_proxy::router> router_;  // after dialer_, which it borrows
    asio::ssl::context tls_{asio::ssl::context::tls_client};
    tcp::acceptor acceptor_{io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    std::vector<tcp::socket> peers_;
};

TEST_F(UpstreamPool, OneWatchdogPerConnection) {
    auto c = connected();
    EXPECT_EQ(&c->deadline(), &c->deadline());
}

TEST_F(UpstreamPool, FiringClosesTheConnection) {
    auto c = connected();
    c->deadline().expires_after(5ms);
    run_for(50ms);
    EXPECT_TRUE(c->deadline().fired());
    EXPECT_FALSE(c->socket().is_open());
}

TEST_F(UpstreamPool, LaterDeadlineOfTheNextExchangeHolds) {
    auto c = connected();
    c->deadline().expires_after(20ms);  // one exchange
    c->deadline().expires_after(10s);   // the next exchange moves it later
    run_for(60ms);
    EXPECT_FALSE(c->deadline().fired());
    EXPECT_TRUE(c->socket().is_open());
}

TEST_F(UpstreamPool, PooledConnectionIsNotClosedByTheLastExchangesDeadline) {
    auto p = pool();
    auto c = connected();
    auto* raw = c.get();
    c->deadline().expires_after(10ms);
    p->release(std::move(c));
    run_for(60ms);
    EXPECT_EQ(p->idle_count(), 1u);
    EXPECT_FALSE(raw->deadline().fired());
    EXPECT_TRUE(raw->socket().is_open());
}

TEST_F(UpstreamPool, TakeIdleGivesTheMostRecentlyReleasedOfTheRightKey) {
    auto p = pool();
    const std::string key = "https://a.test:443";  // make_key's form for ("a.test", 443, tls)
    auto first = connected(key), second = connected(key), other = connected("http://a.test:443");
    auto* second_raw = second.get();
    p->release(std::move(first));
    p->release(std::move(second));
    p->release(std::move(other));
    EXPECT_EQ(p->idle_count(), 3u);
    EXPECT_EQ(p->take_idle("a.test", 443, true).get(), second_raw);
    EXPECT_NE(p->take_idle("a.test", 443, true), nullptr);
    EXPECT_EQ(p->take_idle("a.test", 443, true), nullptr);  // the plain one is not for TLS
    EXPECT_EQ(p->idle_count(), 1u);
    EXPECT_NE(p->take_idle("a.test", 443, false), nullptr);
    EXPECT_EQ(p->idle_count(), 0u);
}

TEST_F(UpstreamPool, TakeIdleClosesConnectionsIdleTooLong) {
    iron::http::upstream_timeouts t;
    t.idle = 20ms;
    auto p = pool(t);
    p->release(connected("https://a.test:443"));
    std::this_thread::sleep_for(30ms);
    EXPECT_EQ(p->take_idle("a.test", 443, true), nullptr);  // closed and dropped, not handed out
    EXPECT_EQ(p->idle_count(), 0u);
}

TEST_F(UpstreamPool, ReleaseKeepsThePerKeyAndTotalLimits) {
    iron::http::upstream_timeouts t;
    t.max_idle_per_key = 2;
    t.max_idle_total = 3;
    auto p = pool(t);
    for (int i = 0; i < 3; ++i) p->release(connected("https://a.test:443"));
    EXPECT_EQ(p->idle_count(), 2u);
    for (int i = 0; i < 3; ++i) p->release(connected("https://b.test:443"));
    EXPECT_EQ(p->idle_count(), 3u);
}

}  // namespace
