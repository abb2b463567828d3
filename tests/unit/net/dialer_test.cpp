// net::dialer: the deny check happens before any connect, on exactly the address connected to.
#include "net/dialer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace iron::net::testing {

// The fake DNS responder lives in resolver_test.cpp (same test binary): see the zone listed there.
struct fake_dns;
std::shared_ptr<fake_dns> start_fake_dns(boost::asio::io_context& ctx);
std::string fake_dns_address(const std::shared_ptr<fake_dns>& dns);

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

core::deny_list deny(const std::vector<std::string>& entries) {
    auto d = core::deny_list::parse(entries);
    EXPECT_TRUE(d) << d.message();
    return d ? *d : core::deny_list{};
}

// co_spawn's completion handler wants a default-constructible value; result<T> is not.
asio::awaitable<void> capture(asio::awaitable<result<dial_result>> a, std::optional<result<dial_result>>* out) {
    out->emplace(co_await std::move(a));
}

std::string why(const std::optional<result<dial_result>>& r) {
    if (!r) return "no result";
    return *r ? "ok" : r->message();
}

// A listener that never accepts on its own: tests look at its queue afterwards.
tcp::acceptor listen_on(asio::io_context& ctx, const char* ip, unsigned short port = 0, int backlog = 16) {
    tcp::acceptor a(ctx);
    tcp::endpoint ep(asio::ip::make_address(ip), port);
    a.open(ep.protocol());
    a.bind(ep);
    a.listen(backlog);
    a.non_blocking(true);
    return a;
}

bool has_pending_connection(tcp::acceptor& a) {
    boost::system::error_code ec;
    tcp::socket s = a.accept(ec);
    return !ec;
}

class DialerTest : public ::testing::Test {
protected:
    void SetUp() override {
        dns_ = start_fake_dns(ctx_);
        auto r = resolver::create(ctx_.get_executor(), fake_dns_address(dns_));
        ASSERT_TRUE(r) << r.message();
        resolver_ = std::move(*r);
    }
    void TearDown() override { resolver_.reset(); }

    std::optional<result<dial_result>> dial(const core::deny_list& d, std::string host, std::uint16_t port,
                                            std::chrono::milliseconds timeout = 2000ms,
                                            const loop_guard* loops = nullptr) {
        dialer dl(*resolver_, d, timeout, loops);
        std::optional<result<dial_result>> out;
        asio::co_spawn(ctx_, capture(dl.dial(std::move(host), port), &out), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (!out && std::chrono::steady_clock::now() < deadline) ctx_.run_one_for(50ms);
        EXPECT_TRUE(out.has_value()) << "dial did not complete";
        return out;
    }

    asio::io_context ctx_;
    std::shared_ptr<fake_dns> dns_;
    std::unique_ptr<resolver> resolver_;
};

TEST_F(DialerTest, DeniedLiteralNeverConnects) {
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    auto r = dial(deny({"127.0.0.0/8"}), "127.0.0.1", port);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp 127.0.0.1:" + std::to_string(port) +
                                ": denied by upstream_deny_cidrs: 127.0.0.1 in 127.0.0.0/8");
    EXPECT_FALSE(has_pending_connection(acc));
}

TEST_F(DialerTest, EmptyDenyListConnects) {
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    auto r = dial(core::deny_list{}, "127.0.0.1", port);
    ASSERT_TRUE(r && *r) << why(r);
    EXPECT_EQ(r->value().peer, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    tcp::no_delay nd;
    r->value().socket.get_option(nd);
    EXPECT_TRUE(nd.value());
    asio::socket_base::keep_alive ka;
    r->value().socket.get_option(ka);
    EXPECT_TRUE(ka.value());
    EXPECT_TRUE(has_pending_connection(acc));
}

TEST_F(DialerTest, MappedV6LiteralIsUnmappedAndDenied) {
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    auto r = dial(deny({"127.0.0.0/8"}), "::ffff:127.0.0.1", port);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp 127.0.0.1:" + std::to_string(port) +
                                ": denied by upstream_deny_cidrs: 127.0.0.1 in 127.0.0.0/8");
    EXPECT_FALSE(has_pending_connection(acc));
}

TEST_F(DialerTest, MappedV6LiteralConnectsToTheUnmappedAddress) {
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    auto r = dial(core::deny_list{}, "[::ffff:127.0.0.1]", port);
    ASSERT_TRUE(r && *r) << why(r);
    EXPECT_EQ(r->value().peer, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
}

TEST_F(DialerTest, ClosedPortIsRefused) {
    std::uint16_t port;
    {
        auto acc = listen_on(ctx_, "127.0.0.1");
        port = acc.local_endpoint().port();
    }
    auto r = dial(core::deny_list{}, "127.0.0.1", port);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp 127.0.0.1:" + std::to_string(port) + ": connect: connection refused");
    EXPECT_EQ(r->err().kind, error_kind::connect_refused);  // Proxy-Status: connection_refused
}

TEST_F(DialerTest, LookupFailureIsReported) {
    auto r = dial(core::deny_list{}, "missing.test", 80);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp: lookup missing.test: no such host");
    EXPECT_EQ(r->err().kind, error_kind::dns_no_such_host);  // Proxy-Status: dns_error, NXDOMAIN
}

TEST_F(DialerTest, NameResolvingToLoopbackIsDenied) {
    // local.test => 127.0.0.1 only: the DNS answer is checked, not just literals.
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    auto r = dial(deny({"127.0.0.0/8"}), "local.test", port);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp 127.0.0.1:" + std::to_string(port) +
                                ": denied by upstream_deny_cidrs: 127.0.0.1 in 127.0.0.0/8");
    EXPECT_FALSE(has_pending_connection(acc));
}

TEST_F(DialerTest, AllAddressesDeniedReportsTheFirst) {
    auto r = dial(deny({"::1/128", "127.0.0.0/8"}), "a.test", 443);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp 127.0.0.2:443: denied by upstream_deny_cidrs: 127.0.0.2 in 127.0.0.0/8");
    EXPECT_EQ(r->err().kind, error_kind::address_denied);  // Proxy-Status: destination_ip_prohibited
}

TEST_F(DialerTest, DeniedAddressIsSkippedForTheAllowedOne) {
    // mixed.test => [127.0.0.3, ::1]. Both listen on the same port; only ::1 is allowed.
    tcp::acceptor v6(ctx_);
    try {
        v6 = listen_on(ctx_, "::1");
    } catch (const boost::system::system_error&) {
        GTEST_SKIP() << "no IPv6 loopback";
    }
    auto port = v6.local_endpoint().port();
    auto v4 = listen_on(ctx_, "127.0.0.3", port);
    auto r = dial(deny({"127.0.0.0/8"}), "mixed.test", port);
    ASSERT_TRUE(r && *r) << why(r);
    EXPECT_EQ(r->value().peer, tcp::endpoint(asio::ip::make_address("::1"), port));
    EXPECT_TRUE(has_pending_connection(v6));
    EXPECT_FALSE(has_pending_connection(v4));
}

TEST_F(DialerTest, DeniedThenRefusedReportsTheConnectError) {
    std::uint16_t port;
    {
        auto acc = listen_on(ctx_, "127.0.0.1");
        port = acc.local_endpoint().port();
    }
    auto r = dial(deny({"127.0.0.0/8"}), "mixed.test", port);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp [::1]:" + std::to_string(port) + ": connect: connection refused");
}

TEST_F(DialerTest, ConnectTimesOut) {
    // A listener with a full accept queue drops SYNs (Linux), so connects hang until our timeout.
    auto acc = listen_on(ctx_, "127.0.0.1", 0, 0);
    auto port = acc.local_endpoint().port();
    std::vector<tcp::socket> keep;
    std::optional<std::string> timeout_error;
    for (int i = 0; i < 8 && !timeout_error; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto r = dial(core::deny_list{}, "127.0.0.1", port, 300ms);
        ASSERT_TRUE(r);
        if (*r) {
            keep.push_back(std::move(r->value().socket));
            continue;
        }
        EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
        timeout_error = r->message();
    }
    ASSERT_TRUE(timeout_error) << "accept queue never filled";
    EXPECT_EQ(*timeout_error, "dial tcp 127.0.0.1:" + std::to_string(port) + ": i/o timeout");
}

TEST(DialerPolicy, UnmapAndDeniedBy) {
    auto d = deny({"127.0.0.0/8", "fd00:ec2::254/128"});
    auto prefix_of = [&d](const char* ip) -> std::optional<std::string> {
        auto denial = denied_by(d, asio::ip::make_address(ip));
        if (!denial) return std::nullopt;
        return denial->prefix;
    };
    EXPECT_EQ(unmap(asio::ip::make_address("::ffff:10.1.2.3")), asio::ip::make_address("10.1.2.3"));
    EXPECT_EQ(unmap(asio::ip::make_address("::1")), asio::ip::make_address("::1"));
    EXPECT_EQ(prefix_of("::ffff:127.9.9.9"), std::optional<std::string>("127.0.0.0/8"));
    EXPECT_EQ(prefix_of("fd00:ec2::254"), std::optional<std::string>("fd00:ec2::254/128"));
    EXPECT_EQ(prefix_of("::ffff:0.0.0.0"), std::optional<std::string>("127.0.0.0/8"));  // this host
    EXPECT_EQ(prefix_of("64:ff9b::7f00:1"), std::optional<std::string>("127.0.0.0/8"));  // NAT64
    EXPECT_FALSE(prefix_of("::1"));
    EXPECT_FALSE(prefix_of("10.0.0.1"));
    EXPECT_FALSE(denied_by(core::deny_list{}, asio::ip::make_address("127.0.0.1")));
}

TEST_F(DialerTest, UnspecifiedAddressIsDeniedAsThisHost) {
    // A connect to 0.0.0.0 lands on 127.0.0.1: a list naming loopback stops it too.
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    auto r = dial(deny({"127.0.0.0/8"}), "0.0.0.0", port);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp 0.0.0.0:" + std::to_string(port) +
                                ": denied by upstream_deny_cidrs: 0.0.0.0 (this host, as 127.0.0.1) in 127.0.0.0/8");
    EXPECT_FALSE(has_pending_connection(acc));
}

TEST_F(DialerTest, EmbeddedIpv4IsDeniedBeforeAnyConnect) {
    auto r = dial(deny({"169.254.169.254/32"}), "[64:ff9b::a9fe:a9fe]", 80);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "dial tcp [64:ff9b::a9fe:a9fe]:80: denied by upstream_deny_cidrs: "
                            "64:ff9b::a9fe:a9fe (embeds 169.254.169.254) in 169.254.169.254/32");
    EXPECT_EQ(r->err().kind, error_kind::address_denied);  // a denial (502), not a loop (508)
}

TEST_F(DialerTest, OwnListenerIsALoopNotAConnect) {
    // local.test => 127.0.0.1, where "our" listener is: refused before connecting, kind loop.
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    loop_guard loops;
    loops.add("http", acc.local_endpoint());
    auto r = dial(core::deny_list{}, "local.test", port, 2000ms, &loops);
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->err().kind, error_kind::loop_detected);
    EXPECT_EQ(r->message(), "loop detected: 127.0.0.1:" + std::to_string(port) + " is this proxy's http listener");
    EXPECT_FALSE(has_pending_connection(acc));
}

TEST_F(DialerTest, WildcardListenerCatchesLoopbackAndUnspecified) {
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    loop_guard loops;
    loops.add("tunnel", tcp::endpoint(asio::ip::address_v6::any(), port));
    for (const char* host : {"127.0.0.1", "0.0.0.0", "[::]", "[::1]", "a.test"}) {
        auto r = dial(core::deny_list{}, host, port, 2000ms, &loops);
        ASSERT_TRUE(r);
        ASSERT_FALSE(*r) << host;
        EXPECT_EQ(r->err().kind, error_kind::loop_detected) << host << ": " << r->message();
    }
    EXPECT_FALSE(has_pending_connection(acc));
}

TEST_F(DialerTest, OtherPortsAndAddressesStillConnect) {
    auto acc = listen_on(ctx_, "127.0.0.1");
    auto port = acc.local_endpoint().port();
    loop_guard loops;
    loops.add("http", tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port + 1)));
    loops.add("https", tcp::endpoint(asio::ip::make_address("127.0.0.9"), port));  // same port, other address
    auto r = dial(core::deny_list{}, "127.0.0.1", port, 2000ms, &loops);
    ASSERT_TRUE(r && *r) << why(r);
    EXPECT_TRUE(has_pending_connection(acc));
}

}  // namespace
}  // namespace iron::net::testing
