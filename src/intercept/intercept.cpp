#include "intercept/intercept.hpp"

#include <sys/socket.h>

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "core/host_glob.hpp"
#include "core/log.hpp"
#include "h2/server.hpp"
#include "exchange/phases.hpp"
#include "runtime/audit_entry.hpp"
#include "runtime/exchange_state.hpp"
#include "exchange/proxy_status.hpp"
#include "http/respond.hpp"
#include "http/session.hpp"
#include "http/upstream.hpp"
#include "net/dialer.hpp"
#include "upstream_proxy/router.hpp"
#include "net/listener.hpp"
#include "net/live_connections.hpp"
#include "net/splice.hpp"
#include "net/tls_stream.hpp"
#include "tls/client_hello.hpp"
#include "tls/contexts.hpp"

namespace iron::intercept {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;

std::string remote_address(const asio::ip::tcp::endpoint& ep) {
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    std::string host = addr.to_string();
    if (addr.is_v6()) host = "[" + host + "]";
    return host + ":" + std::to_string(ep.port());
}

namespace {

// One audit record for a connection that never produced an HTTP request (handshake failure,
// unknown protocol): the Go proxy drops these silently; we record them.
void audit_connection_failure(const runtime::connection_info& conn, std::string host, std::string error) {
    runtime::audit_entry entry(conn);
    entry.rec.host = std::move(host);
    entry.settle(audit::action::reject, 400, std::move(error));
}

// Waits (bounded by the handshake timeout) for the first bytes and returns the first one. What
// was read stays in the socket's replay buffer, where the TLS layer or the HTTP parser reads it:
// one read instead of a readiness wait, a MSG_PEEK and the real read. (A readiness wait could
// also wake spuriously when epoll reports an event meant for the previous user of the same fd
// number, which dropped the connection.)
asio::awaitable<int> peek_first_byte(net::client_socket& sock, net::watchdog& dog,
                                     std::chrono::steady_clock::duration timeout) {
    if (int b = sock.peek_buffered(); b >= 0) co_return b;
    dog.expires_after(timeout);
    std::array<char, 2048> buf;  // a ClientHello or a request head, usually whole
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
    if (ec || n == 0) co_return -1;
    sock.unread(std::string_view(buf.data(), n));
    co_return static_cast<unsigned char>(buf[0]);
}

// Whether the client opened with the cleartext HTTP/2 preface (prior knowledge, RFC 9113 §3.4).
// Reads at most the 24 preface bytes (bounded by `timeout`) and puts them back either way.
asio::awaitable<bool> starts_with_h2_preface(net::client_socket& sock, net::watchdog& dog,
                                             std::chrono::steady_clock::duration timeout) {
    const std::string_view preface(h2::client_preface, sizeof h2::client_preface - 1);
    std::string got;
    dog.expires_after(timeout);
    char buf[sizeof h2::client_preface - 1];
    while (got.size() < preface.size() && preface.substr(0, got.size()) == got) {
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf, preface.size() - got.size()),
                                                     as_tuple(use_awaitable));
        if (ec) break;
        got.append(buf, n);
    }
    sock.unread(got);
    co_return got == preface;
}

// A plain-text connection: HTTP/1.x, or HTTP/2 with prior knowledge (h2c).
asio::awaitable<void> serve_plain(net::client_socket& sock, runtime::connection_info& conn, net::watchdog& dog) {
    const bool h2c = co_await starts_with_h2_preface(sock, dog, conn.shared->proxy.client_header_timeout);
    if (h2c)
        co_await h2::serve_h2(sock, conn, dog);
    else
        co_await http::serve_http(sock, conn, dog);
}

asio::awaitable<void> serve_tls(net::client_socket sock, runtime::connection_info conn) {
    net::tls_stream<net::client_socket> tls(std::move(sock), *conn.shared->server_tls);
    net::watchdog dog = net::closing_watchdog(tls.next_layer());
    dog.expires_after(conn.shared->proxy.client_handshake_timeout);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
    const char* sni = SSL_get_servername(tls.native_handle(), TLSEXT_NAMETYPE_host_name);
    conn.sni = sni ? sni : "";
    if (ec) {
        std::string why = dog.fired() ? "timeout" : ec.message();
        if (conn.sni.empty() && !dog.fired()) why = "client hello missing sni or handshake failed: " + why;
        if (runtime::draining(conn)) why = "closed at shutdown";  // the drain closes connections with no request
        log::debug("tls handshake failed", {{"remote_addr", conn.remote_addr}, {"error", why}});
        audit_connection_failure(conn, conn.sni, "tls handshake: " + why);
        co_return;
    }
    conn.tls = true;
    if (!tls::client_can_use_tickets(tls.native_handle())) tls.skip_session_tickets();
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(tls.native_handle(), &alpn, &alpn_len);
    if (alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2')
        co_await h2::serve_h2(tls, conn, dog);
    else
        co_await http::serve_http(tls, conn, dog);
    // Best-effort close_notify, bounded so a stuck peer cannot hold the connection.
    dog.expires_after(std::chrono::seconds(2));
    co_await tls.async_shutdown(as_tuple(use_awaitable));
}

void close_socket(void* s) {
    boost::system::error_code ignored;
    static_cast<asio::ip::tcp::socket*>(s)->close(ignored);
}

// Reads (and keeps, for replay upstream) the ClientHello: at most 16 KiB within 5 s (Go's limits).
asio::awaitable<tls::client_hello_info> record_client_hello(net::client_socket& sock, net::watchdog& dog,
                                                            std::string& recorded) {
    dog.expires_after(std::chrono::seconds(5));
    std::array<char, 4096> buf;
    for (;;) {
        auto parsed = tls::parse_client_hello(recorded);
        if (parsed.state != tls::client_hello_info::status::need_more) co_return parsed;
        if (recorded.size() > tls::max_client_hello_bytes) co_return tls::client_hello_info{tls::client_hello_info::status::invalid, ""};
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
        if (ec) co_return tls::client_hello_info{tls::client_hello_info::status::invalid, ""};
        recorded.append(buf.data(), n);
    }
}

// tls.mode: sni-only — policy on the SNI, then bytes relayed untouched to SNI:443. The
// CONNECT port is ignored on purpose (anti port-pivot). One audit record covering the connection.
asio::awaitable<void> serve_sni_only(net::client_socket sock, runtime::connection_info conn) {
    net::watchdog dog = net::closing_watchdog(sock);
    std::string hello;
    auto parsed = co_await record_client_hello(sock, dog, hello);

    runtime::audit_entry entry(conn, "sni-only");
    audit::record& rec = entry.rec;
    rec.sni.clear();  // until the ClientHello names one
    auto emit = [&] { entry.emit(); };
    if (parsed.state != tls::client_hello_info::status::ok) {
        rec.action = audit::action::reject;
        rec.status_code = 400;
        rec.error = dog.fired() ? "timeout reading client hello" : "unparseable client hello";
        emit();
        co_return;
    }
    rec.host = parsed.sni;
    rec.sni = parsed.sni;
    if (parsed.sni.empty()) {
        rec.action = audit::action::reject;
        rec.status_code = 400;
        rec.error = "client hello missing sni";
        emit();
        co_return;
    }
    pipeline::exchange ex;
    ex.method = "";
    ex.host = parsed.sni;
    ex.policy_host = core::normalize_host(parsed.sni);
    ex.sni = parsed.sni;
    ex.remote_addr = conn.remote_addr;
    ex.mode = "sni-only";
    ex.is_connect = true;  // host-level policy only: there is no request to look at
    const auto policy = conn.shared->policies->get();  // kept alive for the call, whatever a reload does
    auto decided = policy->pipeline->run_connect(ex, rec.request_transforms);
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        exchange::record_verdict(rec, decided, true);
        emit();
        co_return;
    }
    dog.expires_after(conn.shared->proxy.upstream_connect_timeout + std::chrono::seconds(1));
    // Through the parent proxy too, when one is configured for TLS origins: a tunnel to SNI:443.
    auto& router = *conn.worker->router;
    const auto route = router.choose(ex.policy_host, 443, true, upstream_proxy::carriage::opaque);
    auto dialed = co_await router.dial(ex.policy_host, 443, route);
    if (!dialed) {
        rec.action = audit::action::error;
        rec.status_code = exchange::settle(exchange::dial_failure(dialed.err()), false).status;
        rec.error = dialed.message();
        emit();
        co_return;
    }
    asio::ip::tcp::socket& upstream = dialed->socket;
    auto [wec, wn] = co_await asio::async_write(upstream, asio::buffer(hello), as_tuple(use_awaitable));
    rec.action = audit::action::allow;
    rec.status_code = 200;
    if (!wec) {
        net::watchdog relay_dog(sock.socket().get_executor(), [&sock, &upstream] {
            boost::system::error_code ignored;
            sock.socket().close(ignored);
            upstream.close(ignored);
        });
        dog.disarm();
        // A drain waits for the relay; a cut closes both sides, and the record says so.
        net::live_connection::work_scope relaying(conn.live);
        net::live_connection::cut_hook cut_closes_upstream(conn.live, &close_socket, &upstream);
        const auto totals = co_await net::splice(sock, upstream, relay_dog, conn.shared->proxy.client_idle_timeout);
        if (conn.live && conn.live->cut()) {
            rec.action = audit::action::error;
            rec.error = "cut at shutdown" + runtime::bytes_note(totals.b_to_a, "response");
        }
    }
    emit();
}

}  // namespace

asio::awaitable<void> serve(net::client_socket sock, runtime::connection_info conn, accept_plain plain) {
    int first = -1;
    {
        net::watchdog peek_dog = net::closing_watchdog(sock);
        first = co_await peek_first_byte(sock, peek_dog, conn.shared->proxy.client_handshake_timeout);
    }
    // Closed (or timed out, or drained) before a byte: no request, so no record of its own. A
    // tunnel's CONNECT/SOCKS5 record already says it opened; an idle preconnect is no rejection.
    if (first < 0) co_return;
    if (first == 0x16) {
        if (conn.shared->tls_mode == "sni-only")
            co_await serve_sni_only(std::move(sock), std::move(conn));
        else
            co_await serve_tls(std::move(sock), std::move(conn));
        co_return;
    }
    net::watchdog dog = net::closing_watchdog(sock);
    if (first >= 'A' && first <= 'Z') {
        if (plain == accept_plain::yes) {
            co_await serve_plain(sock, conn, dog);
            co_return;
        }
        const auto f = exchange::client_failure(exchange::failure_kind::malformed,
                                                "client sent an HTTP request to an HTTPS server");
        audit_connection_failure(conn, "", f.detail);
        dog.expires_after(std::chrono::seconds(2));
        exchange::settlement s = exchange::settle(f, false);
        s.reply_text = "Client sent an HTTP request to an HTTPS server.";  // the Go proxy's words
        const exchange::proxy_reply reply =
            exchange::reply_to(f, s, conn.shared->policies->get()->reason_body);
        co_await http::write_reply(sock, reply, false);
        co_return;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", first);
    audit_connection_failure(conn, conn.tunnel ? conn.tunnel->target : "",
                             std::string("unsupported protocol (first byte ") + hex + ")");
}

asio::awaitable<void> serve_http_listener(asio::ip::tcp::socket sock, asio::ip::tcp::endpoint peer,
                                          std::shared_ptr<const runtime::shared_state> shared, runtime::worker_state* worker) {
    runtime::connection_info conn{std::move(shared), worker, remote_address(peer), "", false, std::nullopt, ""};
    if (conn.shared->proxy.transparent) conn.original_dst = net::original_destination(sock);
    net::live_connection live(worker ? worker->live : nullptr, sock.native_handle());
    conn.live = &live;
    net::client_socket client(std::move(sock));
    net::watchdog dog = net::closing_watchdog(client);
    co_await serve_plain(client, conn, dog);
}

asio::awaitable<void> serve_https_listener(asio::ip::tcp::socket sock, asio::ip::tcp::endpoint peer,
                                           std::shared_ptr<const runtime::shared_state> shared, runtime::worker_state* worker) {
    runtime::connection_info conn{std::move(shared), worker, remote_address(peer), "", false, std::nullopt, ""};
    if (conn.shared->proxy.transparent) conn.original_dst = net::original_destination(sock);
    net::live_connection live(worker ? worker->live : nullptr, sock.native_handle());
    conn.live = &live;
    co_await serve(net::client_socket(std::move(sock)), std::move(conn), accept_plain::no);
}

}  // namespace iron::intercept
