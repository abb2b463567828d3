// dns::server over real sockets on 127.0.0.1:0: UDP and TCP, passthrough through a tiny in-test
// upstream DNS (dns.upstream_resolver points at it), limits, malformed input, start-up errors.
// The server and the fake upstream run on one io_context in a background thread; the test talks
// to them with plain blocking sockets.
#include "dns/server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
// ldns/common.h #defines bool, true and false (as _Bool, 1 and 0) unless stdbool.h came first.
#include <stdbool.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "dns/codec.hpp"

namespace iron::dns::testing {

// From codec_test.cpp (same test binary).
struct q_spec {
    std::string name;
    std::uint16_t type = type_a;
};
struct query_opts {
    std::uint16_t id = 0x1234;
    bool rd = true;
    bool cd = false;
    int opcode = 0;
    int edns_size = -1;
    bool do_bit = false;
    int edns_version = 0;
};
std::vector<std::uint8_t> make_query(const std::vector<q_spec>& qs, const query_opts& o);
struct rr_text {
    std::string owner;
    std::uint16_t type = 0;
    std::uint32_t ttl = 0;
    std::string data;
};
struct reply {
    bool ok = false;
    std::size_t size = 0;
    std::uint16_t id = 0;
    bool qr = false, aa = false, tc = false, rd = false, cd = false, ra = false;
    int opcode = -1;
    int rcode = -1;
    std::vector<std::string> questions;
    std::vector<rr_text> answers;
    bool edns = false;
    std::uint16_t edns_size = 0;
    bool do_bit = false;
};
reply parse_reply(const std::vector<std::uint8_t>& wire);

namespace {

namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;

// ---- the upstream: up.internal.corp A 192.0.2.77 + 192.0.2.78 (TTL 300) and AAAA ::1,
// v6only.internal.corp AAAA only, silent.internal.corp never answered, anything else NXDOMAIN.
std::vector<std::uint8_t> upstream_answer(const std::uint8_t* data, std::size_t n) {
    ldns_pkt* q = nullptr;
    if (ldns_wire2pkt(&q, data, n) != LDNS_STATUS_OK) return {};
    std::vector<std::uint8_t> out;
    const ldns_rr* qr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    char* text = qr ? ldns_rdf2str(ldns_rr_owner(qr)) : nullptr;
    std::string name = text ? text : "";
    std::free(text);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (qr && name != "silent.internal.corp.") {
        ldns_pkt* r = ldns_pkt_new();
        ldns_pkt_set_id(r, ldns_pkt_id(q));
        ldns_pkt_set_qr(r, true);
        ldns_pkt_set_rd(r, ldns_pkt_rd(q));
        ldns_pkt_set_ra(r, true);
        ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(qr));
        std::vector<std::string> rrs;
        const auto type = ldns_rr_get_type(qr);
        if (name == "up.internal.corp." && type == LDNS_RR_TYPE_A)
            rrs = {name + " 300 IN A 192.0.2.77", name + " 300 IN A 192.0.2.78"};
        else if ((name == "up.internal.corp." || name == "v6only.internal.corp.") && type == LDNS_RR_TYPE_AAAA)
            rrs = {name + " 300 IN AAAA ::1"};
        if (name != "up.internal.corp." && name != "v6only.internal.corp.") ldns_pkt_set_rcode(r, LDNS_RCODE_NXDOMAIN);
        for (const auto& s : rrs) {
            ldns_rr* rr = nullptr;
            if (ldns_rr_new_frm_str(&rr, s.c_str(), 0, nullptr, nullptr) == LDNS_STATUS_OK)
                ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
        }
        std::uint8_t* wire = nullptr;
        std::size_t len = 0;
        if (ldns_pkt2wire(&wire, r, &len) == LDNS_STATUS_OK) out.assign(wire, wire + len);
        std::free(wire);
        ldns_pkt_free(r);
    }
    ldns_pkt_free(q);
    return out;
}

struct upstream {
    explicit upstream(asio::io_context& ctx) : sock(ctx, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
    udp::socket sock;
    std::atomic<int> queries{0};
};

asio::awaitable<void> serve_upstream(std::shared_ptr<upstream> up) {
    std::array<std::uint8_t, 1500> buf;
    for (;;) {
        udp::endpoint from;
        auto [ec, n] = co_await up->sock.async_receive_from(asio::buffer(buf), from, asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        ++up->queries;
        auto out = upstream_answer(buf.data(), n);
        if (out.empty()) continue;
        co_await up->sock.async_send_to(asio::buffer(out), from, asio::as_tuple(asio::use_awaitable));
    }
}

// ---- blocking client sockets --------------------------------------------------------------------

struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

sockaddr_in loopback(unsigned short port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

void set_timeout(int fd, std::chrono::milliseconds t) {
    timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// Sends one datagram from a fresh socket; the reply, or empty after `wait`.
std::vector<std::uint8_t> udp_exchange(unsigned short port, const std::vector<std::uint8_t>& msg,
                                       std::chrono::milliseconds wait = 3000ms) {
    fd_guard s{::socket(AF_INET, SOCK_DGRAM, 0)};
    set_timeout(s.fd, wait);
    auto to = loopback(port);
    ::sendto(s.fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    std::vector<std::uint8_t> buf(65536);
    ssize_t n = ::recv(s.fd, buf.data(), buf.size(), 0);
    if (n <= 0) return {};
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

int tcp_connect(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    auto to = loopback(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
    }
    set_timeout(fd, 3000ms);
    return fd;
}

std::vector<std::uint8_t> framed(const std::vector<std::uint8_t>& msg) {
    std::vector<std::uint8_t> out{static_cast<std::uint8_t>(msg.size() >> 8), static_cast<std::uint8_t>(msg.size())};
    out.insert(out.end(), msg.begin(), msg.end());
    return out;
}

bool send_all(int fd, const std::vector<std::uint8_t>& bytes) {
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

bool recv_exact(int fd, std::uint8_t* p, std::size_t n) {
    while (n > 0) {
        ssize_t got = ::recv(fd, p, n, 0);
        if (got <= 0) return false;
        p += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
}

// One length-prefixed reply; empty if the connection closed (or timed out) first.
std::vector<std::uint8_t> read_framed(int fd) {
    std::array<std::uint8_t, 2> head{};
    if (!recv_exact(fd, head.data(), 2)) return {};
    std::vector<std::uint8_t> msg((head[0] << 8) | head[1]);
    if (!recv_exact(fd, msg.data(), msg.size())) return {};
    return msg;
}

std::vector<std::uint8_t> query(std::vector<q_spec> qs, std::uint16_t id = 0x1234) {
    query_opts o;
    o.id = id;
    return make_query(qs, o);
}

// ---- fixture ------------------------------------------------------------------------------------

class DnsServerTest : public ::testing::Test {
protected:
    void start(server_limits limits = {}) {
        up_ = std::make_shared<upstream>(ctx_);
        asio::co_spawn(ctx_, serve_upstream(up_), asio::detached);
        cfg_.enabled = true;
        cfg_.listen = "127.0.0.1:0";
        cfg_.proxy_ip = "10.9.8.7";
        cfg_.upstream_resolver = "127.0.0.1:" + std::to_string(up_->sock.local_endpoint().port());
        cfg_.passthrough = {"*.internal.corp"};
        cfg_.records = {{"static.test", "A", "192.0.2.10"}, {"up.internal.corp.evil", "A", "192.0.2.11"}};
        for (int i = 0; i < 40; ++i) cfg_.records.push_back({"many.test", "AAAA", "2001:db8::" + std::to_string(i + 1)});
        auto s = server::start(ctx_, cfg_, limits);
        ASSERT_TRUE(s) << s.message();
        server_ = std::move(*s);
        port_ = server_->udp_endpoint().port();
        thread_ = std::thread([this] { ctx_.run(); });
    }
    void TearDown() override {
        work_.reset();
        ctx_.stop();
        if (thread_.joinable()) thread_.join();
        server_.reset();  // no thread runs ctx_ now: the server closes synchronously
        if (up_) {
            boost::system::error_code ec;
            up_->sock.close(ec);
        }
    }

    asio::io_context ctx_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{ctx_.get_executor()};
    config::dns_config cfg_;
    std::shared_ptr<upstream> up_;
    std::unique_ptr<server> server_;
    unsigned short port_ = 0;
    std::thread thread_;
};

}  // namespace

TEST_F(DnsServerTest, BindsUdpAndTcpOnOnePort) {
    start();
    EXPECT_NE(port_, 0);
    EXPECT_EQ(server_->tcp_endpoint().port(), port_);
    EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(port_));
}

TEST_F(DnsServerTest, UdpInterceptStaticAndEmpty) {
    start();
    auto r = parse_reply(udp_exchange(port_, query({{"Foo.Example."}}, 7)));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.id, 7);
    EXPECT_TRUE(r.aa);
    ASSERT_EQ(r.answers.size(), 1u);
    EXPECT_EQ(r.answers[0].owner, "Foo.Example.");
    EXPECT_EQ(r.answers[0].data, "10.9.8.7");
    r = parse_reply(udp_exchange(port_, query({{"static.test."}})));
    ASSERT_EQ(r.answers.size(), 1u);
    EXPECT_EQ(r.answers[0].data, "192.0.2.10");
    r = parse_reply(udp_exchange(port_, query({{"foo.example.", type_aaaa}})));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.rcode, 0);
    EXPECT_TRUE(r.answers.empty());
}

TEST_F(DnsServerTest, PassthroughRelaysUpstreamIpv4WithTtl60) {
    start();
    auto r = parse_reply(udp_exchange(port_, query({{"Up.Internal.Corp."}})));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.rcode, 0);
    ASSERT_EQ(r.answers.size(), 2u);
    EXPECT_EQ(r.answers[0].owner, "Up.Internal.Corp.");
    EXPECT_EQ(r.answers[0].data, "192.0.2.77");
    EXPECT_EQ(r.answers[1].data, "192.0.2.78");
    EXPECT_EQ(r.answers[0].ttl, 60u);
    EXPECT_GE(up_->queries.load(), 1);
    // AAAA for a passthrough name: empty, and not even asked upstream for its AAAA.
    r = parse_reply(udp_exchange(port_, query({{"up.internal.corp.", type_aaaa}})));
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.answers.empty());
    // Only IPv6 upstream: empty A answer.
    r = parse_reply(udp_exchange(port_, query({{"v6only.internal.corp."}})));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.rcode, 0);
    EXPECT_TRUE(r.answers.empty());
}

TEST_F(DnsServerTest, PassthroughFailureIsEmptyNoerrorAndWarns) {
    start();
    ::testing::internal::CaptureStderr();
    auto r = parse_reply(udp_exchange(port_, query({{"missing.internal.corp."}})));
    std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.rcode, 0);
    EXPECT_TRUE(r.answers.empty());
    EXPECT_NE(err.find("dns passthrough lookup failed"), std::string::npos) << err;
    EXPECT_NE(err.find("missing.internal.corp."), std::string::npos) << err;
}

TEST_F(DnsServerTest, TcpSeveralQueriesOnOneConnection) {
    start();
    fd_guard c{tcp_connect(port_)};
    ASSERT_GE(c.fd, 0);
    // Pipelined in one write: answered in order.
    auto bytes = framed(query({{"a.example."}}, 1));
    for (auto& part : {framed(query({{"static.test."}}, 2)), framed(query({{"up.internal.corp."}}, 3))})
        bytes.insert(bytes.end(), part.begin(), part.end());
    ASSERT_TRUE(send_all(c.fd, bytes));
    auto r1 = parse_reply(read_framed(c.fd));
    auto r2 = parse_reply(read_framed(c.fd));
    auto r3 = parse_reply(read_framed(c.fd));
    ASSERT_TRUE(r1.ok && r2.ok && r3.ok);
    EXPECT_EQ(r1.id, 1);
    EXPECT_EQ(r1.answers.at(0).data, "10.9.8.7");
    EXPECT_EQ(r2.id, 2);
    EXPECT_EQ(r2.answers.at(0).data, "192.0.2.10");
    EXPECT_EQ(r3.id, 3);
    EXPECT_EQ(r3.answers.size(), 2u);
    // And one more after a pause.
    ASSERT_TRUE(send_all(c.fd, framed(query({{"b.example."}}, 4))));
    EXPECT_EQ(parse_reply(read_framed(c.fd)).id, 4);
}

TEST_F(DnsServerTest, UdpTruncatesWhatTcpCarries) {
    start();
    auto q = query({{"many.test.", type_aaaa}});
    auto r = parse_reply(udp_exchange(port_, q));
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.tc);
    EXPECT_TRUE(r.answers.empty());
    EXPECT_LE(r.size, 512u);
    fd_guard c{tcp_connect(port_)};
    ASSERT_TRUE(send_all(c.fd, framed(q)));
    r = parse_reply(read_framed(c.fd));
    EXPECT_FALSE(r.tc);
    EXPECT_EQ(r.answers.size(), 40u);
}

TEST_F(DnsServerTest, TcpIdleConnectionIsClosed) {
    server_limits l;
    l.tcp_idle = 200ms;
    start(l);
    fd_guard c{tcp_connect(port_)};
    ASSERT_GE(c.fd, 0);
    auto t0 = std::chrono::steady_clock::now();
    std::uint8_t b;
    EXPECT_EQ(::recv(c.fd, &b, 1, 0), 0);  // orderly close, well before the 3 s socket timeout
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    // Half a length prefix and silence: same.
    fd_guard d{tcp_connect(port_)};
    ASSERT_TRUE(send_all(d.fd, {0x00}));
    EXPECT_EQ(::recv(d.fd, &b, 1, 0), 0);
}

TEST_F(DnsServerTest, TcpGarbageEndsTheConnectionNotTheServer) {
    start();
    fd_guard c{tcp_connect(port_)};
    // A runt (no header) gets no reply over TCP: the connection closes.
    ASSERT_TRUE(send_all(c.fd, framed({1, 2, 3})));
    std::uint8_t b;
    EXPECT_EQ(::recv(c.fd, &b, 1, 0), 0);
    fd_guard d{tcp_connect(port_)};
    ASSERT_TRUE(send_all(d.fd, {0x00, 0x00}));  // zero-length message
    EXPECT_EQ(::recv(d.fd, &b, 1, 0), 0);
    // Malformed with a header: FORMERR, and the connection stays usable.
    fd_guard e{tcp_connect(port_)};
    ASSERT_TRUE(send_all(e.fd, framed({0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f})));
    auto r = parse_reply(read_framed(e.fd));
    EXPECT_EQ(r.id, 0xabcd);
    EXPECT_EQ(r.rcode, rcode_formerr);
    ASSERT_TRUE(send_all(e.fd, framed(query({{"a.example."}}, 9))));
    EXPECT_EQ(parse_reply(read_framed(e.fd)).id, 9);
}

TEST_F(DnsServerTest, TcpConnectionLimit) {
    server_limits l;
    l.max_tcp_connections = 1;
    start(l);
    fd_guard first{tcp_connect(port_)};
    ASSERT_TRUE(send_all(first.fd, framed(query({{"a.example."}}, 1))));
    EXPECT_EQ(parse_reply(read_framed(first.fd)).id, 1);  // it is registered by now
    fd_guard second{tcp_connect(port_)};
    std::uint8_t b;
    EXPECT_LE(::recv(second.fd, &b, 1, 0), 0);  // closed at once
    ASSERT_TRUE(send_all(first.fd, framed(query({{"a.example."}}, 2))));
    EXPECT_EQ(parse_reply(read_framed(first.fd)).id, 2);
}

TEST_F(DnsServerTest, MalformedUdpIsAnsweredOrDroppedAndServingGoesOn) {
    start();
    auto r = parse_reply(udp_exchange(port_, {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff}));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.id, 0x1234);
    EXPECT_EQ(r.rcode, rcode_formerr);
    EXPECT_TRUE(udp_exchange(port_, {1, 2, 3}, 300ms).empty());  // no header: dropped
    auto resp = query({{"a.example."}});
    resp[2] |= 0x80;
    EXPECT_TRUE(udp_exchange(port_, resp, 300ms).empty());  // a response: never answered
    r = parse_reply(udp_exchange(port_, query({{"a.example."}}, 77)));
    EXPECT_EQ(r.id, 77);
    EXPECT_EQ(r.answers.size(), 1u);
}

TEST_F(DnsServerTest, TooManyPendingLookupsIsServfail) {
    server_limits l;
    l.max_inflight_lookups = 1;
    l.lookup_budget = 800ms;
    start(l);
    // The first lookup hangs upstream (silent) and holds the only slot.
    fd_guard slow{::socket(AF_INET, SOCK_DGRAM, 0)};
    set_timeout(slow.fd, 3000ms);
    auto to = loopback(port_);
    auto q1 = query({{"silent.internal.corp."}}, 1);
    ::sendto(slow.fd, q1.data(), q1.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    std::this_thread::sleep_for(100ms);
    auto r = parse_reply(udp_exchange(port_, query({{"up.internal.corp."}}, 2)));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.rcode, rcode_servfail);
    EXPECT_FALSE(r.aa);
    // Synthesised answers need no slot.
    EXPECT_EQ(parse_reply(udp_exchange(port_, query({{"a.example."}}, 3))).answers.size(), 1u);
    // The hung lookup ends with an empty NOERROR when its budget runs out, and frees the slot.
    std::vector<std::uint8_t> buf(512);
    ssize_t n = ::recv(slow.fd, buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    buf.resize(static_cast<std::size_t>(n));
    r = parse_reply(buf);
    EXPECT_EQ(r.id, 1);
    EXPECT_EQ(r.rcode, 0);
    EXPECT_TRUE(r.answers.empty());
    EXPECT_EQ(parse_reply(udp_exchange(port_, query({{"up.internal.corp."}}, 4))).answers.size(), 2u);
}

TEST_F(DnsServerTest, StopClosesTheSockets) {
    start();
    EXPECT_EQ(parse_reply(udp_exchange(port_, query({{"a.example."}}))).answers.size(), 1u);
    server_->stop();
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(udp_exchange(port_, query({{"a.example."}}), 300ms).empty());
    EXPECT_LT(tcp_connect(port_), 0);
}

TEST(DnsServerStart, Errors) {
    asio::io_context ctx;
    config::dns_config c;
    c.listen = "127.0.0.1:0";
    c.proxy_ip = "fe80::1";
    auto s = server::start(ctx, c);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.message(), "invalid proxy_ip (must be IPv4): \"fe80::1\"");

    c.proxy_ip = "10.0.0.1";
    c.listen = "127.0.0.1:x";
    s = server::start(ctx, c);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.message(), "dns.listen: invalid listen address \"127.0.0.1:x\": bad port");

    // The port is taken (UDP): the bind error names it.
    udp::socket taken(ctx, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    c.listen = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
    s = server::start(ctx, c);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.message().rfind("listen udp " + c.listen + ": bind: ", 0), 0u) << s.message();
}

}  // namespace iron::dns::testing
