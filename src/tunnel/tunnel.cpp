#include "tunnel/tunnel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/host_glob.hpp"
#include "http/messages.hpp"
#include "http/respond.hpp"
#include "intercept/intercept.hpp"
#include "net/client_socket.hpp"
#include "net/watchdog.hpp"

namespace iron::tunnel {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

struct connect_target {
    std::string host;  // normalised, no brackets
    std::string authority;  // "host:port" as audited (IPv6 bracketed)
};

// CONNECT's request-target is authority-form; a missing port means 443 (§5.2).
std::optional<connect_target> parse_connect_target(std::string_view target) {
    if (target.empty() || target.find('/') != std::string_view::npos || target.find('@') != std::string_view::npos)
        return std::nullopt;
    auto hp = core::split_host_port(target);
    if (hp.host.empty()) return std::nullopt;
    if (hp.port.empty()) hp.port = "443";
    char* end = nullptr;
    long port = std::strtol(hp.port.c_str(), &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) return std::nullopt;
    connect_target out;
    out.host = core::normalize_host(hp.host);
    bool v6 = hp.host.find(':') != std::string::npos;
    out.authority = (v6 ? "[" + hp.host + "]" : hp.host) + ":" + hp.port;
    return out;
}

asio::awaitable<bool> write_raw(net::client_socket& sock, std::string_view bytes) {
    auto [ec, n] = co_await asio::async_write(sock, asio::buffer(bytes.data(), bytes.size()), as_tuple(use_awaitable));
    co_return !ec;
}

}  // namespace

asio::awaitable<void> serve_tunnel_listener(asio::ip::tcp::socket raw, std::shared_ptr<const http::shared_state> shared,
                                            http::worker_state* worker) {
    http::connection_info conn{shared, worker, intercept::remote_address(raw), "", false, std::nullopt};
    net::client_socket sock(std::move(raw));
    net::watchdog dog(sock.socket().get_executor(), [&sock] {
        boost::system::error_code ignored;
        sock.socket().close(ignored);
    });

    audit::record rec;
    rec.remote_addr = conn.remote_addr;
    rec.method = "CONNECT";
    auto emit = [&] {
        rec.finish();
        shared->audit->emit(rec);
    };

    beast::flat_buffer buf;
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.header_limit(64 * 1024);
    dog.expires_after(shared->proxy.client_header_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(sock, buf, parser, as_tuple(use_awaitable));
    if (ec) {
        if (!parser.got_some() && !dog.fired() && buf.size() == 0) co_return;  // connected and left
        rec.method = "";
        rec.action = audit::action::reject;
        if (dog.fired()) {
            rec.status_code = 408;
            rec.error = "timeout reading tunnel request";
        } else if (buf.size() > 0 && static_cast<const unsigned char*>(buf.data().data())[0] == 0x05) {
            rec.status_code = 400;
            rec.error = "socks5 is not yet supported by this build";
        } else {
            rec.status_code = 400;
            rec.error = "malformed tunnel request: " + ec.message();
            co_await http::write_error_text(sock, 400, "malformed request", false);
        }
        emit();
        co_return;
    }
    auto& req = parser.get();
    rec.method = std::string(req.method_string());
    rec.host = std::string(req.target());
    if (req.method() != bhttp::verb::connect) {
        rec.action = audit::action::reject;
        rec.status_code = 405;
        rec.error = "tunnel listener accepts only CONNECT";
        co_await write_raw(sock, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        emit();
        co_return;
    }
    auto target = parse_connect_target(req.target());
    if (!target) {
        rec.action = audit::action::reject;
        rec.status_code = 400;
        rec.error = "malformed CONNECT target";
        co_await write_raw(sock, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        emit();
        co_return;
    }
    rec.host = target->authority;
    rec.sni = target->host;

    // Host-level policy on the synthetic CONNECT request (§5.4, §14 item 7).
    pipeline::exchange ex;
    ex.method = "CONNECT";
    ex.host = target->authority;
    ex.policy_host = target->host;
    ex.sni = target->host;
    ex.remote_addr = conn.remote_addr;
    ex.is_connect = true;
    ex.request_headers = http::to_header_list(req.base());
    auto decided = shared->pipeline->run_connect(ex, rec.request_transforms);
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        http::apply_verdict_to_record(rec, decided, true);
        if (decided.outcome.what == pipeline::verdict::kind::error) {
            co_await write_raw(sock, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        } else {
            co_await http::write_verdict(sock, decided.outcome, false);
        }
        emit();
        co_return;
    }
    rec.action = audit::action::allow;
    rec.status_code = 200;
    if (!co_await write_raw(sock, "HTTP/1.1 200 Connection Established\r\n\r\n")) {
        rec.action = audit::action::client_cancel;
    }
    emit();

    // Bytes the client sent right behind its CONNECT head belong to the tunnel (§14 item 12).
    if (buf.size() > 0) {
        sock.unread(std::string_view(static_cast<const char*>(buf.data().data()), buf.size()));
        buf.consume(buf.size());
    }
    conn.tunnel = audit::tunnel_info{target->authority, rec.request_transforms};
    dog.disarm();
    co_await intercept::serve(std::move(sock), std::move(conn), intercept::accept_plain::yes);
}

}  // namespace iron::tunnel
