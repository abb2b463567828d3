#include "intercept/intercept.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "http/respond.hpp"
#include "http/session.hpp"

namespace iron::intercept {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;

std::string remote_address(const asio::ip::tcp::socket& sock) {
    boost::system::error_code ec;
    auto ep = sock.remote_endpoint(ec);
    if (ec) return "";
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    std::string host = addr.to_string();
    if (addr.is_v6()) host = "[" + host + "]";
    return host + ":" + std::to_string(ep.port());
}

namespace {

// One audit record for a connection that never produced an HTTP request (handshake failure,
// unknown protocol): the Go proxy drops these silently; we record them (§14 item 3).
void audit_connection_failure(const http::connection_info& conn, std::string host, std::string error) {
    audit::record rec;
    rec.host = std::move(host);
    rec.remote_addr = conn.remote_addr;
    rec.sni = conn.sni;
    rec.tunnel = conn.tunnel;
    rec.action = audit::action::reject;
    rec.status_code = 400;
    rec.error = std::move(error);
    rec.finish();
    conn.shared->audit->emit(rec);
}

// Waits (bounded by the handshake timeout) for the first byte without consuming it.
asio::awaitable<int> peek_first_byte(net::client_socket& sock, net::watchdog& dog,
                                     std::chrono::steady_clock::duration timeout) {
    if (int b = sock.peek_buffered(); b >= 0) co_return b;
    dog.expires_after(timeout);
    auto [ec] = co_await sock.socket().async_wait(asio::socket_base::wait_read, as_tuple(use_awaitable));
    if (ec) co_return -1;
    unsigned char byte = 0;
    ssize_t n = ::recv(sock.socket().native_handle(), &byte, 1, MSG_PEEK);
    co_return n == 1 ? byte : -1;
}

net::watchdog make_watchdog(net::client_socket& sock) {
    return net::watchdog(sock.socket().get_executor(), [&sock] {
        boost::system::error_code ignored;
        sock.socket().close(ignored);
    });
}

asio::awaitable<void> serve_tls(net::client_socket sock, http::connection_info conn) {
    asio::ssl::stream<net::client_socket> tls(std::move(sock), *conn.shared->server_tls);
    net::watchdog dog = make_watchdog(tls.next_layer());
    dog.expires_after(conn.shared->proxy.client_handshake_timeout);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
    const char* sni = SSL_get_servername(tls.native_handle(), TLSEXT_NAMETYPE_host_name);
    conn.sni = sni ? sni : "";
    if (ec) {
        std::string why = dog.fired() ? "timeout" : ec.message();
        if (conn.sni.empty() && !dog.fired()) why = "client hello missing sni or handshake failed: " + why;
        log::debug("tls handshake failed", {{"remote_addr", conn.remote_addr}, {"error", why}});
        audit_connection_failure(conn, conn.sni, "tls handshake: " + why);
        co_return;
    }
    conn.tls = true;
    co_await http::serve_http(tls, conn, dog);
    // Best-effort close_notify, bounded so a stuck peer cannot hold the connection.
    dog.expires_after(std::chrono::seconds(2));
    co_await tls.async_shutdown(as_tuple(use_awaitable));
}

}  // namespace

asio::awaitable<void> serve(net::client_socket sock, http::connection_info conn, accept_plain plain) {
    int first = -1;
    {
        net::watchdog peek_dog = make_watchdog(sock);
        first = co_await peek_first_byte(sock, peek_dog, conn.shared->proxy.client_handshake_timeout);
    }
    if (first < 0) {
        if (conn.tunnel) audit_connection_failure(conn, conn.tunnel->target, "tunnel closed before any request");
        co_return;
    }
    if (first == 0x16) {
        co_await serve_tls(std::move(sock), std::move(conn));
        co_return;
    }
    net::watchdog dog = make_watchdog(sock);
    if (first >= 'A' && first <= 'Z') {
        if (plain == accept_plain::yes) {
            co_await http::serve_http(sock, conn, dog);
            co_return;
        }
        audit_connection_failure(conn, "", "client sent an HTTP request to an HTTPS server");
        dog.expires_after(std::chrono::seconds(2));
        co_await http::write_error_text(sock, 400, "Client sent an HTTP request to an HTTPS server.", false);
        co_return;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", first);
    audit_connection_failure(conn, conn.tunnel ? conn.tunnel->target : "",
                             std::string("unsupported protocol (first byte ") + hex + ")");
}

asio::awaitable<void> serve_http_listener(asio::ip::tcp::socket sock, std::shared_ptr<const http::shared_state> shared,
                                          http::worker_state* worker) {
    http::connection_info conn{std::move(shared), worker, remote_address(sock), "", false, std::nullopt};
    net::client_socket client(std::move(sock));
    net::watchdog dog = make_watchdog(client);
    co_await http::serve_http(client, conn, dog);
}

asio::awaitable<void> serve_https_listener(asio::ip::tcp::socket sock, std::shared_ptr<const http::shared_state> shared,
                                           http::worker_state* worker) {
    http::connection_info conn{std::move(shared), worker, remote_address(sock), "", false, std::nullopt};
    co_await serve(net::client_socket(std::move(sock)), std::move(conn), accept_plain::no);
}

}  // namespace iron::intercept
