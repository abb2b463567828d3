#include "tunnel/tunnel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/host_glob.hpp"
#include "exchange/phases.hpp"
#include "exchange/proxy_status.hpp"
#include "runtime/audit_entry.hpp"
#include "runtime/exchange_state.hpp"
#include "http/messages.hpp"
#include "http/respond.hpp"
#include "intercept/intercept.hpp"
#include "net/client_socket.hpp"
#include "net/live_connections.hpp"
#include "net/watchdog.hpp"
#include "tunnel/connect_target.hpp"
#include "tunnel/socks5.hpp"

namespace iron::tunnel {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

// The per-connection state of the tunnel handshake, and its one audit record.
struct handshake {
    handshake(runtime::connection_info c, net::client_socket s)
        : conn(std::move(c)), sock(std::move(s)), entry(conn, conn.shared->tls_mode) {}

    runtime::connection_info conn;
    net::client_socket sock;
    beast::flat_buffer buf;
    runtime::audit_entry entry;
    audit::record& rec = entry.rec;

    void emit() { entry.emit(); }
    void reject(int status, std::string error) { entry.settle(audit::action::reject, status, std::move(error)); }
    std::string_view buffered() const {
        return {static_cast<const char*>(buf.data().data()), buf.size()};
    }
};

asio::awaitable<bool> write_bytes(net::client_socket& sock, const void* data, std::size_t n) {
    auto [ec, written] = co_await asio::async_write(sock, asio::buffer(data, n), as_tuple(use_awaitable));
    co_return !ec;
}

asio::awaitable<bool> write_raw(net::client_socket& sock, std::string_view bytes) {
    co_return co_await write_bytes(sock, bytes.data(), bytes.size());
}

// Reads more bytes into the handshake buffer; false on EOF, error, or timeout.
asio::awaitable<bool> read_more(handshake& hs) {
    auto space = hs.buf.prepare(512);
    auto [ec, n] = co_await hs.sock.async_read_some(space, as_tuple(use_awaitable));
    if (ec) co_return false;
    hs.buf.commit(n);
    co_return true;
}

// Host-level policy on the synthetic CONNECT request (Go ran every transform here). Fills the record's
// traces and verdict fields; returns the decision.
pipeline::phase_result check_policy(handshake& hs, const connect_target& target, core::header_list headers) {
    hs.rec.method = "CONNECT";
    hs.rec.host = target.authority;
    hs.rec.sni = target.host;
    pipeline::exchange ex;
    ex.method = "CONNECT";
    ex.host = target.authority;
    ex.policy_host = target.host;
    ex.sni = target.host;
    ex.remote_addr = hs.conn.remote_addr;
    ex.is_connect = true;
    ex.mode = hs.conn.shared->tls_mode;
    ex.request_headers = std::move(headers);
    hs.rec.mode = ex.mode;
    const auto policy = hs.conn.shared->policies->get();  // kept alive for the call, whatever a reload does
    auto decided = policy->pipeline->run_connect(ex, hs.rec.request_transforms);
    if (decided.outcome.what == pipeline::verdict::kind::next) {
        hs.rec.action = audit::action::allow;
        hs.rec.status_code = 200;
    } else {
        exchange::record_verdict(hs.rec, decided, /*request_phase=*/true);
    }
    return decided;
}

// proxy.deny_body: reason, as this handshake's policy snapshot says.
bool reason_body(const handshake& hs) { return hs.conn.shared->policies->get()->reason_body; }

// Refuses a CONNECT head with a response the proxy makes: the record says why, the client gets
// the status, the Go proxy's body for it (`go_text`, "" for none) and the Proxy-Status field.
asio::awaitable<void> refuse(handshake& hs, const exchange::failure& f, const char* go_text) {
    exchange::settlement s = exchange::settle(f, false);
    hs.entry.settle(s.action, s.status, f.detail);
    s.reply_text = go_text;
    const exchange::proxy_reply reply = exchange::reply_to(f, s, reason_body(hs));
    co_await http::write_reply(hs.sock, reply, false);
}

// A CONNECT the host-level policy did not let through: its verdict as the response (the record
// already has it).
asio::awaitable<void> refuse(handshake& hs, const pipeline::phase_result& decided, const std::string& host) {
    const bool reason = reason_body(hs);
    exchange::proxy_reply reply = exchange::reply_to(decided, host, reason);
    if (decided.outcome.what == pipeline::verdict::kind::error) {
        // As the Go proxy: a host-level transform that fails refuses the tunnel with a 403.
        reply.status = 403;
        if (!reason) reply.body.clear();
    }
    co_await http::write_reply(hs.sock, reply, false);
}

// After an allowed handshake: audit it, hand the tunnel (with any bytes the client pipelined
// behind its handshake, which Go drops) to the interceptor.
asio::awaitable<void> enter_tunnel(handshake& hs, const connect_target& target, std::size_t consumed) {
    hs.emit();
    hs.buf.consume(consumed);
    if (hs.buf.size() > 0) {
        hs.sock.unread(hs.buffered());
        hs.buf.consume(hs.buf.size());
    }
    hs.conn.tunnel = audit::tunnel_info{target.authority, hs.rec.request_transforms};
    co_await intercept::serve(std::move(hs.sock), std::move(hs.conn), intercept::accept_plain::yes);
}

asio::awaitable<void> serve_socks5(handshake& hs) {
    socks5::greeting g;
    while ((g = socks5::parse_greeting(hs.buffered())).state == socks5::status::need_more) {
        if (hs.buf.size() > socks5::max_handshake_bytes || !co_await read_more(hs)) {
            hs.reject(400, "socks5: incomplete greeting");
            co_return;
        }
    }
    if (g.state == socks5::status::invalid) {
        hs.reject(400, "socks5: malformed greeting");
        co_return;
    }
    if (!g.no_auth_offered) {
        auto r = socks5::method_reply(false);
        co_await write_bytes(hs.sock, r.data(), r.size());
        hs.reject(407, "socks5: client offered no acceptable authentication method (only no-auth is supported)");
        co_return;
    }
    hs.buf.consume(g.consumed);
    auto accept = socks5::method_reply(true);
    if (!co_await write_bytes(hs.sock, accept.data(), accept.size())) co_return;

    socks5::request req;
    while ((req = socks5::parse_request(hs.buffered())).state == socks5::status::need_more) {
        if (hs.buf.size() > socks5::max_handshake_bytes || !co_await read_more(hs)) {
            hs.reject(400, "socks5: incomplete request");
            co_return;
        }
    }
    if (req.state == socks5::status::invalid) {
        hs.reject(400, "socks5: malformed request");
        co_return;
    }
    if (req.reply != socks5::rep::succeeded) {
        auto r = socks5::reply(req.reply);
        co_await write_bytes(hs.sock, r.data(), r.size());
        hs.rec.host = req.host.empty() ? "" : req.authority();
        hs.reject(400, req.reply == socks5::rep::command_not_supported ? "socks5: only CONNECT is supported"
                                                                        : "socks5: unsupported address");
        co_return;
    }
    connect_target target{core::normalize_host(req.host), req.authority()};
    auto decided = check_policy(hs, target, {});
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        auto r = socks5::reply(socks5::rep::not_allowed);
        co_await write_bytes(hs.sock, r.data(), r.size());
        co_return;
    }
    auto ok = socks5::reply(socks5::rep::succeeded);
    if (!co_await write_bytes(hs.sock, ok.data(), ok.size())) {
        hs.rec.action = audit::action::client_cancel;
        co_return;
    }
    co_await enter_tunnel(hs, target, req.consumed);
}

// Reads until the buffer holds the first line of an HTTP head (or more than a head may be);
// whatever happens, the CONNECT parser then reads on from the same buffer.
asio::awaitable<void> read_request_line(handshake& hs) {
    while (hs.buffered().find('\n') == std::string_view::npos && hs.buf.size() <= max_connect_head_bytes) {
        const bool more = co_await read_more(hs);
        if (!more) break;
    }
}

// A forward-proxy request for a plain-HTTP URL (HTTP_PROXY pointed at this port): no tunnel, no
// handshake record; the connection is served exactly as plain HTTP inside a tunnel is, each
// request checked, transformed and audited on its own.
asio::awaitable<void> serve_forward_proxy_http(handshake& hs, net::watchdog& dog) {
    hs.entry.dismiss();
    dog.disarm();  // the HTTP session keeps its own header and idle deadlines
    hs.sock.unread(hs.buffered());
    hs.buf.consume(hs.buf.size());
    co_await intercept::serve(std::move(hs.sock), std::move(hs.conn), intercept::accept_plain::yes);
}

asio::awaitable<void> serve_connect(handshake& hs, net::watchdog& dog) {
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.header_limit(max_connect_head_bytes);
    auto [ec, n] = co_await bhttp::async_read_header(hs.sock, hs.buf, parser, as_tuple(use_awaitable));
    if (ec) {
        if (dog.fired()) {
            hs.reject(408, "timeout reading tunnel request");
        } else if (runtime::draining(hs.conn)) {
            hs.reject(400, "tunnel request cut short: closed at shutdown");
        } else {
            const auto f = exchange::client_failure(exchange::failure_kind::malformed,
                                                    "malformed tunnel request: " + ec.message());
            co_await refuse(hs, f, "malformed request");
        }
        co_return;
    }
    auto& req = parser.get();
    hs.rec.method = std::string(req.method_string());
    const std::string_view host_header = req[bhttp::field::host];
    if (req.method() != bhttp::verb::connect) {
        hs.rec.host = std::string(host_header);  // as for any request: the host it names, not its target
        const auto f = exchange::client_failure(exchange::failure_kind::method_not_allowed,
                                                "tunnel listener accepts only CONNECT");
        co_await refuse(hs, f, "");
        co_return;
    }
    hs.rec.host = std::string(req.target());
    // `CONNECT /path` names no authority: the Host header does, as the Go proxy reads it.
    auto target = parse_connect_target(req.target());
    if (!target && req.target().starts_with('/') && !host_header.empty()) {
        hs.rec.host = std::string(host_header);
        target = parse_connect_target(host_header);
    }
    if (!target) {
        const auto f = exchange::client_failure(exchange::failure_kind::malformed, "malformed CONNECT target");
        co_await refuse(hs, f, "");
        co_return;
    }
    auto decided = check_policy(hs, *target, http::to_header_list(req.base()));
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        co_await refuse(hs, decided, target->host);
        co_return;
    }
    if (!co_await write_raw(hs.sock, "HTTP/1.1 200 Connection Established\r\n\r\n")) {
        hs.rec.action = audit::action::client_cancel;
        co_return;
    }
    dog.disarm();
    co_await enter_tunnel(hs, *target, 0);  // the parser already consumed the head from buf
}

}  // namespace

asio::awaitable<void> serve_tunnel_listener(asio::ip::tcp::socket raw, asio::ip::tcp::endpoint peer,
                                            std::shared_ptr<const runtime::shared_state> shared, runtime::worker_state* worker) {
    runtime::connection_info conn{shared, worker, intercept::remote_address(peer), "", false, std::nullopt, ""};
    // Registered for graceful shutdown: the handshake counts as idle (closed at once by a drain),
    // what follows in the tunnel is drained like any other connection.
    net::live_connection live(worker ? worker->live : nullptr, raw.native_handle());
    conn.live = &live;
    handshake hs(std::move(conn), net::client_socket(std::move(raw)));
    net::watchdog dog = net::closing_watchdog(hs.sock);
    dog.expires_after(shared->proxy.client_header_timeout);

    // One byte tells SOCKS5 (0x05) from an HTTP CONNECT head, as in Go; a bounded wait, unlike Go.
    if (!co_await read_more(hs)) {
        if (dog.fired()) hs.reject(408, "timeout waiting for the tunnel handshake");
        else hs.entry.dismiss();  // connected and left without a byte: no request, no record
        co_return;
    }
    if (detect_handshake(static_cast<unsigned char>(hs.buffered()[0])) == handshake_protocol::socks5) {
        co_await serve_socks5(hs);
        dog.disarm();
        hs.emit();
        co_return;
    }
    co_await read_request_line(hs);
    if (is_absolute_http_request(hs.buffered())) {
        co_await serve_forward_proxy_http(hs, dog);
        co_return;
    }
    co_await serve_connect(hs, dog);
    hs.emit();
}

}  // namespace iron::tunnel
