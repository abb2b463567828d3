// net::resolver against a tiny in-process DNS responder on 127.0.0.1:0 (test code only: the wire
// format is hand-built here because a stub answering four fixed names needs no codec).
#include "net/resolver.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::net::testing {

namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;
using address_list = std::vector<asio::ip::address>;

// ---- fake DNS server -----------------------------------------------------------------------
// a.test     A 127.0.0.2, AAAA ::1
// mixed.test A 127.0.0.3, AAAA ::1
// local.test A 127.0.0.1
// slow.test  never answered
// anything else NXDOMAIN

struct fake_dns {
    explicit fake_dns(asio::io_context& ctx) : sock(ctx, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
    udp::socket sock;
    int queries = 0;
    std::string address() const { return "127.0.0.1:" + std::to_string(sock.local_endpoint().port()); }
};

namespace {

void put16(std::vector<std::uint8_t>& out, unsigned v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

// Returns the reply datagram, or nothing to stay silent.
std::vector<std::uint8_t> answer(const std::uint8_t* q, std::size_t n) {
    if (n < 12) return {};
    std::size_t off = 12;
    std::string name;
    while (off < n && q[off] != 0) {
        std::size_t len = q[off];
        if ((len & 0xc0) || off + 1 + len > n) return {};
        if (!name.empty()) name += '.';
        for (std::size_t i = 0; i < len; ++i) name += static_cast<char>(std::tolower(q[off + 1 + i]));
        off += 1 + len;
    }
    if (off + 5 > n) return {};
    ++off;  // root label
    unsigned qtype = (q[off] << 8) | q[off + 1];
    off += 4;  // qtype, qclass
    if (name == "slow.test") return {};

    struct rr {
        std::string name;
        unsigned type;
        std::vector<std::uint8_t> data;
    };
    const std::vector<std::uint8_t> v6_loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::vector<rr> zone{
        {"a.test", 1, {127, 0, 0, 2}},     {"a.test", 28, v6_loopback},
        {"mixed.test", 1, {127, 0, 0, 3}}, {"mixed.test", 28, v6_loopback},
        {"local.test", 1, {127, 0, 0, 1}},
    };
    bool known = false;
    std::vector<const rr*> hits;
    for (const auto& r : zone) {
        if (r.name != name) continue;
        known = true;
        if (r.type == qtype) hits.push_back(&r);
    }
    std::vector<std::uint8_t> out{q[0], q[1]};
    out.push_back(static_cast<std::uint8_t>(0x80 | (q[2] & 0x01)));  // QR, copy RD
    out.push_back(static_cast<std::uint8_t>(0x80 | (known ? 0 : 3)));  // RA, NOERROR | NXDOMAIN
    put16(out, 1);
    put16(out, static_cast<unsigned>(hits.size()));
    put16(out, 0);
    put16(out, 0);
    out.insert(out.end(), q + 12, q + off);
    for (const rr* r : hits) {
        put16(out, 0xc00c);  // name: pointer to the question
        put16(out, r->type);
        put16(out, 1);  // IN
        put16(out, 0);
        put16(out, 60);  // TTL
        put16(out, static_cast<unsigned>(r->data.size()));
        out.insert(out.end(), r->data.begin(), r->data.end());
    }
    return out;
}

asio::awaitable<void> serve_dns(std::shared_ptr<fake_dns> dns) {
    std::array<std::uint8_t, 1500> buf;
    for (;;) {
        udp::endpoint from;
        auto [ec, n] = co_await dns->sock.async_receive_from(asio::buffer(buf), from, asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        ++dns->queries;
        auto reply = answer(buf.data(), n);
        if (reply.empty()) continue;
        co_await dns->sock.async_send_to(asio::buffer(reply), from, asio::as_tuple(asio::use_awaitable));
    }
}

}  // namespace

// Also used by dialer_test.cpp (same test binary). Returns "127.0.0.1:<port>" and a keep-alive.
std::shared_ptr<fake_dns> start_fake_dns(asio::io_context& ctx) {
    auto dns = std::make_shared<fake_dns>(ctx);
    asio::co_spawn(ctx, serve_dns(dns), asio::detached);
    return dns;
}
std::string fake_dns_address(const std::shared_ptr<fake_dns>& dns) { return dns->address(); }

namespace {

// co_spawn's completion handler wants a default-constructible T, which result<T> is not: the
// value goes through a pointer instead.
template <class T>
asio::awaitable<void> capture(asio::awaitable<T> a, std::optional<T>* out) {
    out->emplace(co_await std::move(a));
}

void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

// Runs `a` on ctx until it completes (or fails the test after `limit`).
template <class T>
std::optional<T> run_until_done(asio::io_context& ctx, asio::awaitable<T> a, std::chrono::milliseconds limit = 5000ms) {
    std::optional<T> out;
    asio::co_spawn(ctx, capture(std::move(a), &out), rethrow);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!out && std::chrono::steady_clock::now() < deadline) ctx.run_one_for(50ms);
    EXPECT_TRUE(out.has_value()) << "did not complete in time";
    return out;
}

void run_for(asio::io_context& ctx, std::chrono::milliseconds d) {
    auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) ctx.run_one_until(deadline);
}

asio::ip::address ip(const char* s) { return asio::ip::make_address(s); }

// Failure text for assertion messages (safe on a value or an empty optional).
std::string why(const std::optional<result<address_list>>& r) {
    if (!r) return "no result";
    return *r ? "ok" : r->message();
}

class ResolverTest : public ::testing::Test {
protected:
    void SetUp() override {
        dns_ = start_fake_dns(ctx_);
        auto r = resolver::create(ctx_.get_executor(), dns_->address());
        ASSERT_TRUE(r) << r.message();
        resolver_ = std::move(*r);
    }
    void TearDown() override { resolver_.reset(); }  // before ctx_, which it needs to release fds

    asio::io_context ctx_;
    std::shared_ptr<fake_dns> dns_;
    std::unique_ptr<resolver> resolver_;
};

TEST_F(ResolverTest, ReturnsV4ThenV6) {
    auto r = run_until_done(ctx_, resolver_->resolve("a.test", 2000ms));
    ASSERT_TRUE(r && *r) << why(r);
    EXPECT_EQ(r->value(), (address_list{ip("127.0.0.2"), ip("::1")}));
    EXPECT_GE(dns_->queries, 2);  // A and AAAA
}

TEST_F(ResolverTest, NxdomainIsLookupError) {
    auto r = run_until_done(ctx_, resolver_->resolve("missing.test", 2000ms));
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "lookup missing.test: no such host");
}

TEST_F(ResolverTest, TimesOutWhenServerIsSilent) {
    auto start = std::chrono::steady_clock::now();
    auto r = run_until_done(ctx_, resolver_->resolve("slow.test", 300ms));
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r);
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->message(), "lookup slow.test: timeout");
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 2s);
}

TEST_F(ResolverTest, IpLiteralsNeedNoQuery) {
    for (const char* lit : {"127.0.0.5", "::1", "[::1]", "2001:db8::7"}) {
        auto r = run_until_done(ctx_, resolver_->resolve(lit, 1000ms));
        ASSERT_TRUE(r && *r) << lit;
        ASSERT_EQ(r->value().size(), 1u) << lit;
        std::string bare = lit;
        if (bare.front() == '[') bare = bare.substr(1, bare.size() - 2);
        EXPECT_EQ(r->value()[0], ip(bare.c_str()));
    }
    EXPECT_EQ(dns_->queries, 0);
}

TEST_F(ResolverTest, EmptyHostIsAnError) {
    auto r = run_until_done(ctx_, resolver_->resolve("", 1000ms));
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
    EXPECT_EQ(dns_->queries, 0);
}

asio::awaitable<void> resolve_into(resolver* r, std::string host, std::shared_ptr<std::vector<std::string>> failures,
                                   std::shared_ptr<int> done) {
    auto res = co_await r->resolve(host, std::chrono::milliseconds(3000));
    if (!res)
        failures->push_back(res.message());
    else if (res->empty() || (*res)[0] != asio::ip::make_address(host == "a.test" ? "127.0.0.2" : "127.0.0.3"))
        failures->push_back(host + ": wrong answer");
    ++*done;
}

TEST_F(ResolverTest, ManyConcurrentLookupsAllComplete) {
    auto failures = std::make_shared<std::vector<std::string>>();
    auto done = std::make_shared<int>(0);
    for (int i = 0; i < 50; ++i)
        asio::co_spawn(ctx_, resolve_into(resolver_.get(), i % 2 ? "a.test" : "mixed.test", failures, done),
                       asio::detached);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (*done < 50 && std::chrono::steady_clock::now() < deadline) ctx_.run_one_for(50ms);
    EXPECT_EQ(*done, 50);
    EXPECT_TRUE(failures->empty()) << (failures->empty() ? "" : failures->front());
}

TEST_F(ResolverTest, DestroyedWithLookupInFlight) {
    std::optional<result<address_list>> out;
    asio::co_spawn(ctx_, capture(resolver_->resolve("slow.test", 10000ms), &out), rethrow);
    run_for(ctx_, 100ms);
    ASSERT_GE(dns_->queries, 1);
    ASSERT_FALSE(out);
    resolver_.reset();  // the pending query must fail, not dangle
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!out && std::chrono::steady_clock::now() < deadline) ctx_.run_one_for(50ms);
    ASSERT_TRUE(out);
    ASSERT_FALSE(*out);
    EXPECT_EQ(out->message(), "lookup slow.test: resolver shut down");
}

TEST_F(ResolverTest, LateAnswerAfterTimeoutIsHarmless) {
    // The first lookup times out and stays pending inside c-ares; later lookups must still work.
    auto slow = run_until_done(ctx_, resolver_->resolve("slow.test", 100ms));
    ASSERT_TRUE(slow && !*slow);
    auto r = run_until_done(ctx_, resolver_->resolve("a.test", 2000ms));
    ASSERT_TRUE(r && *r) << why(r);
    EXPECT_EQ(r->value().size(), 2u);
}

TEST(ResolverCreate, RejectsBadUpstream) {
    asio::io_context ctx;
    auto r = resolver::create(ctx.get_executor(), "not-an-ip:53");
    ASSERT_FALSE(r);
    EXPECT_NE(r.message().find("invalid upstream_resolver \"not-an-ip:53\""), std::string::npos) << r.message();
}

TEST(ResolverCreate, AcceptsBracketedV6Upstream) {
    asio::io_context ctx;
    auto r = resolver::create(ctx.get_executor(), "[::1]:5353");
    EXPECT_TRUE(r) << r.message();
}

TEST(ResolverSystem, LocalhostFromHostsFile) {
    // Empty upstream = system config; "localhost" is answered from /etc/hosts, no network needed.
    asio::io_context ctx;
    auto r = resolver::create(ctx.get_executor(), "");
    ASSERT_TRUE(r) << r.message();
    auto res = run_until_done(ctx, (*r)->resolve("localhost", 3000ms));
    ASSERT_TRUE(res && *res) << why(res);
    ASSERT_FALSE(res->value().empty());
    EXPECT_EQ(res->value()[0], ip("127.0.0.1"));
    r->reset();
}

}  // namespace
}  // namespace iron::net::testing
