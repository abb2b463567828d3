// Sockets around dns::codec. Every coroutine holds the shared state, so the server object can go
// away while operations are still pending; stop()/~server close the sockets, which ends them.
#include "dns/server.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "core/log.hpp"
#include "dns/codec.hpp"
#include "net/listener.hpp"
#include "net/resolver.hpp"
#include "net/watchdog.hpp"

namespace iron::dns {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using std::chrono::milliseconds;

struct server_state {
    explicit server_state(asio::io_context& c) : ioc(c), udp_socket(c), acceptor(c) {}

    asio::io_context& ioc;
    server_limits limits;
    policy pol;
    std::vector<std::string> warnings;
    udp::socket udp_socket;
    tcp::acceptor acceptor;
    udp::endpoint udp_ep;
    tcp::endpoint tcp_ep;
    std::unique_ptr<net::resolver> resolver;  // reset on stop: pending lookups then fail at once
    std::size_t inflight = 0;                 // messages waiting on passthrough lookups
    bool overloaded = false;                  // logged once per overload episode, not per query
    std::uint64_t next_conn = 0;
    std::unordered_map<std::uint64_t, std::shared_ptr<tcp::socket>> conns;
    bool stopped = false;

    void close_all() {
        stopped = true;
        boost::system::error_code ec;
        udp_socket.close(ec);
        acceptor.close(ec);
        for (auto& [id, sock] : conns) sock->close(ec);
        resolver.reset();
    }
};

namespace {

using state_ptr = std::shared_ptr<server_state>;

// One reserved place among the in-flight lookups; given back when destroyed, whichever way the
// lookup coroutine ends (even if it never got to run).
class lookup_slot {
public:
    explicit lookup_slot(state_ptr s) : s_(std::move(s)) { ++s_->inflight; }
    lookup_slot(lookup_slot&& o) noexcept : s_(std::move(o.s_)) {}
    lookup_slot& operator=(lookup_slot&&) = delete;
    ~lookup_slot() {
        if (!s_) return;
        --s_->inflight;
        if (s_->inflight <= s_->limits.max_inflight_lookups / 2) s_->overloaded = false;
    }

private:
    state_ptr s_;
};

std::string endpoint_text(const asio::ip::address& a, unsigned short port) {
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(port);
}

const char* route_msg(route r) {
    switch (r) {
        case route::static_record: return "dns static";
        case route::passthrough: return "dns passthrough";
        case route::intercept: return "dns intercept";
    }
    return "dns intercept";
}

std::size_t reply_limit(const plan& pl, transport t) {
    return t == transport::udp ? pl.q.udp_limit() : max_tcp_message;
}

void log_failure(std::exception_ptr e) {
    // Last-resort catch: a broken exchange never takes the server (or the process) down.
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        log::error("dns session failed", {{"error", ex.what()}});
    } catch (...) {
        log::error("dns session failed", {{"error", "unknown exception"}});
    }
}

// The synchronous part of every exchange: a reply to send now, or a plan that needs lookups.
struct step {
    std::vector<std::uint8_t> reply;  // empty and no plan: drop
    std::optional<plan> pending;
    std::optional<lookup_slot> slot;
};

step begin(const state_ptr& s, const std::uint8_t* data, std::size_t len, transport t) {
    step out;
    auto pr = make_plan(data, len, s->pol);
    if (!pr.todo) {
        out.reply = std::move(pr.reply);
        return out;
    }
    plan& pl = *pr.todo;
    if (log::enabled(log::level::debug)) {
        const auto& qs = pl.q.questions();
        for (std::size_t i = 0; i < pl.decisions.size() && i < qs.size(); ++i)
            log::debug(route_msg(pl.decisions[i].how), {{"name", qs[i].name}, {"type", qs[i].qtype}});
    }
    if (pl.needs_lookup()) {
        if (s->resolver && s->inflight < s->limits.max_inflight_lookups) {
            out.slot.emplace(s);
            out.pending.emplace(std::move(pl));
            return out;
        }
        if (!s->overloaded && !s->stopped) {
            s->overloaded = true;
            log::warn("dns passthrough overloaded: answering SERVFAIL",
                      {{"in_flight", s->inflight}, {"limit", s->limits.max_inflight_lookups}});
        }
        fail_plan(pl, rcode_servfail);
    }
    out.reply = build_reply(pl, reply_limit(pl, t));
    return out;
}

// Resolves every passthrough A question (IPv4 only, as Go) within one budget, then builds the reply.
asio::awaitable<std::vector<std::uint8_t>> resolve_and_build(state_ptr s, plan pl, lookup_slot slot, transport t) {
    const auto deadline = std::chrono::steady_clock::now() + s->limits.lookup_budget;
    const auto& qs = pl.q.questions();
    for (std::size_t i = 0; i < pl.decisions.size(); ++i) {
        decision& d = pl.decisions[i];
        if (!d.lookup) continue;
        auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
        if (s->stopped || !s->resolver) break;
        if (left <= milliseconds(0)) {
            log::warn("dns passthrough lookup failed", {{"name", qs[i].name}, {"error", "lookup budget exhausted"}});
            continue;
        }
        // The resolver may be destroyed (stop) while this waits: resolve() copes, and we do not
        // touch it again after resuming.
        auto res = co_await s->resolver->resolve(d.lookup_name, left);
        if (!res) {
            if (!s->stopped) log::warn("dns passthrough lookup failed", {{"name", qs[i].name}, {"error", res.message()}});
            continue;
        }
        for (const auto& a : *res)
            if (a.is_v4()) d.answers.push_back(a_record(a.to_v4().to_bytes()));
    }
    co_return build_reply(pl, reply_limit(pl, t));
}

asio::awaitable<void> udp_lookup(state_ptr s, plan pl, lookup_slot slot, udp::endpoint to) {
    auto reply = co_await resolve_and_build(s, std::move(pl), std::move(slot), transport::udp);
    if (reply.empty() || s->stopped) co_return;
    co_await s->udp_socket.async_send_to(asio::buffer(reply), to, asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> udp_loop(state_ptr s) {
    std::vector<std::uint8_t> buf(65536);  // the largest datagram
    for (;;) {
        udp::endpoint from;
        auto [ec, n] = co_await s->udp_socket.async_receive_from(asio::buffer(buf), from,
                                                                 asio::as_tuple(asio::use_awaitable));
        if (s->stopped || ec == asio::error::operation_aborted || !s->udp_socket.is_open()) co_return;
        if (ec) continue;  // e.g. a queued ICMP error for an earlier reply: not fatal
        step st = begin(s, buf.data(), n, transport::udp);
        if (st.pending) {
            asio::co_spawn(s->ioc, udp_lookup(s, std::move(*st.pending), std::move(*st.slot), from), log_failure);
            continue;
        }
        if (st.reply.empty()) continue;
        co_await s->udp_socket.async_send_to(asio::buffer(st.reply), from, asio::as_tuple(asio::use_awaitable));
    }
}

// Takes the connection out of the stop list when the session ends, however it ends.
struct conn_registration {
    state_ptr s;
    std::uint64_t id;
    ~conn_registration() { s->conns.erase(id); }
};

asio::awaitable<void> tcp_session(state_ptr s, std::shared_ptr<tcp::socket> sock, std::uint64_t id) {
    conn_registration reg{s, id};
    // Closing the socket aborts whatever read or write is pending: an idle or trickling client
    // cannot hold a connection slot past `tcp_idle`.
    net::watchdog idle(sock->get_executor(), [sock] {
        boost::system::error_code ec;
        sock->close(ec);
    });
    std::array<std::uint8_t, 2> head{};
    std::vector<std::uint8_t> msg;
    while (!s->stopped) {
        idle.expires_after(s->limits.tcp_idle);
        auto [ec1, n1] = co_await asio::async_read(*sock, asio::buffer(head), asio::as_tuple(asio::use_awaitable));
        if (ec1) break;
        const std::size_t len = (std::size_t{head[0]} << 8) | head[1];
        if (len == 0) break;  // nothing to answer; a well-behaved client never sends it
        msg.resize(len);
        auto [ec2, n2] = co_await asio::async_read(*sock, asio::buffer(msg), asio::as_tuple(asio::use_awaitable));
        if (ec2) break;
        step st = begin(s, msg.data(), len, transport::tcp);
        std::vector<std::uint8_t> reply;
        if (st.pending) {
            idle.disarm();  // the lookup budget bounds this wait
            reply = co_await resolve_and_build(s, std::move(*st.pending), std::move(*st.slot), transport::tcp);
        } else {
            reply = std::move(st.reply);
        }
        // A dropped message (a response, a runt) gets no reply; over TCP the client would wait
        // for one forever, so the connection ends instead.
        if (reply.empty() || s->stopped) break;
        idle.expires_after(s->limits.tcp_idle);
        const std::array<std::uint8_t, 2> prefix{static_cast<std::uint8_t>(reply.size() >> 8),
                                                 static_cast<std::uint8_t>(reply.size() & 0xff)};
        const std::array<asio::const_buffer, 2> out{asio::buffer(prefix), asio::buffer(reply)};
        auto [ec3, n3] = co_await asio::async_write(*sock, out, asio::as_tuple(asio::use_awaitable));
        if (ec3) break;
    }
    boost::system::error_code ec;
    sock->shutdown(tcp::socket::shutdown_both, ec);
    sock->close(ec);
}

void on_accept(const state_ptr& s, tcp::socket sock) {
    boost::system::error_code ec;
    if (s->stopped || s->conns.size() >= s->limits.max_tcp_connections) {
        sock.close(ec);  // the client falls back to UDP or retries
        return;
    }
    const std::uint64_t id = s->next_conn++;
    auto shared = std::make_shared<tcp::socket>(std::move(sock));
    s->conns.emplace(id, shared);
    asio::co_spawn(s->ioc, tcp_session(s, std::move(shared), id), log_failure);
}

// UDP first, then TCP on the port UDP got. With port 0 the TCP half of a kernel-chosen UDP port
// may be taken: try another.
result<void> bind_both(server_state& s, const std::string& listen) {
    auto ep = net::parse_listen_address(listen);
    if (!ep) return make_error("dns.listen: " + ep.message());
    const asio::ip::address addr = ep->address();
    const int attempts = ep->port() == 0 ? 20 : 1;
    for (int attempt = 1;; ++attempt) {
        udp::socket u(s.ioc);
        boost::system::error_code ec;
        u.open(addr.is_v6() ? udp::v6() : udp::v4(), ec);
        if (!ec && addr.is_v6()) u.set_option(asio::ip::v6_only(false), ec);  // ":53" = both families
        if (!ec) u.bind(udp::endpoint(addr, ep->port()), ec);
        if (ec) return make_error("listen udp " + listen + ": bind: " + ec.message());
        const unsigned short port = u.local_endpoint(ec).port();
        if (ec) return make_error("listen udp " + listen + ": " + ec.message());
        auto claimed = net::claim_listen_port(tcp::endpoint(addr, port), listen);
        auto acc = claimed ? net::open_acceptor(s.ioc.get_executor(), *claimed, listen)
                           : result<tcp::acceptor>(claimed.err());
        if (!acc) {
            if (attempt < attempts) continue;
            return acc.err();
        }
        s.udp_socket = std::move(u);
        s.acceptor = std::move(*acc);
        s.udp_ep = s.udp_socket.local_endpoint(ec);
        s.tcp_ep = s.acceptor.local_endpoint(ec);
        return ok();
    }
}

}  // namespace

server::server(std::shared_ptr<server_state> s) : s_(std::move(s)) {}

server::~server() { s_->close_all(); }

result<std::unique_ptr<server>> server::start(asio::io_context& ioc, const config::dns_config& cfg,
                                              server_limits limits) {
    auto s = std::make_shared<server_state>(ioc);
    s->limits = limits;
    auto pol = make_policy(cfg, &s->warnings);
    if (!pol) return pol.err();
    s->pol = std::move(*pol);
    auto res = net::resolver::create(ioc.get_executor(), cfg.upstream_resolver);
    if (!res) return make_error("dns.upstream_resolver: " + res.message());
    s->resolver = std::move(*res);
    if (auto bound = bind_both(*s, cfg.listen); !bound) return bound.err();
    asio::co_spawn(ioc, udp_loop(s), log_failure);
    // The handler's copy of `s` keeps the acceptor alive for as long as accept_loop runs. (Spawned
    // from here rather than awaited in a wrapper coroutine: GCC 12 mishandles a lambda temporary
    // inside a co_await expression.)
    net::connection_handler on_conn = [s](tcp::socket sock, const tcp::endpoint&) { on_accept(s, std::move(sock)); };
    asio::co_spawn(ioc, net::accept_loop(s->acceptor, std::move(on_conn)), log_failure);
    return std::unique_ptr<server>(new server(std::move(s)));
}

udp::endpoint server::udp_endpoint() const { return s_->udp_ep; }
tcp::endpoint server::tcp_endpoint() const { return s_->tcp_ep; }
std::string server::address() const { return endpoint_text(s_->udp_ep.address(), s_->udp_ep.port()); }
const std::vector<std::string>& server::warnings() const { return s_->warnings; }

void server::stop() {
    asio::post(s_->ioc, [s = s_] { s->close_all(); });
}

}  // namespace iron::dns
