#include "outbound/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"
#include "core/port.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"
#include "tls/contexts.hpp"

namespace iron::outbound {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Writes the request and reads the whole response (body capped) on an open stream.
template <class Stream>
asio::awaitable<result<http_reply>> round_trip(Stream& stream, const std::string& bytes) {
    auto [wec, written] = co_await asio::async_write(stream, asio::buffer(bytes), use_tuple);
    if (wec) co_return make_error("writing request: " + wec.message());
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(http_client::max_reply_bytes);
    auto [rec, got] = co_await http::async_read(stream, buf, parser, use_tuple);
    if (rec) co_return make_error("reading response: " + rec.message());
    http_reply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = std::move(parser.get().body());
    co_return reply;
}

std::string format_timeout(std::chrono::nanoseconds t) { return "timeout after " + config::format_go_duration(t); }

}  // namespace

result<base_url> parse_base_url(std::string_view text, std::string_view label) {
    base_url u;
    std::string_view rest = text;
    if (rest.starts_with("https://")) {
        rest.remove_prefix(8);
    } else if (rest.starts_with("http://")) {
        u.tls = false;
        u.port = 80;
        rest.remove_prefix(7);
    } else {
        return make_error(std::string(label) + " " + config::go_quote(text) + " must start with http:// or https://");
    }
    if (rest.find_first_of("?#") != std::string_view::npos)
        return make_error(std::string(label) + " " + config::go_quote(text) + " must not have a query or fragment");
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) u.prefix = std::string(rest.substr(slash));
    while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
    if (authority.find('@') != std::string_view::npos)
        return make_error(std::string(label) + " " + config::go_quote(text) + " must not carry credentials");
    const auto hp = core::split_host_port(authority);
    std::string host(hp.host);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return make_error(std::string(label) + " " + config::go_quote(text) + " has no host");
    u.host = std::move(host);
    if (!hp.port.empty()) {
        auto port = core::parse_port(hp.port);
        if (!port || *port == 0) return make_error(std::string(label) + " " + config::go_quote(text) + " has an invalid port");
        u.port = *port;
    }
    return u;
}

result<std::unique_ptr<http_client>> http_client::create(base_url url) {
    std::unique_ptr<asio::ssl::context> tls;
    if (url.tls) {
        auto ctx = tls::make_client_context("");
        if (!ctx) return ctx.err();
        tls = std::make_unique<asio::ssl::context>(ctx->release());
    }
    return std::unique_ptr<http_client>(new http_client(std::move(url), std::move(tls)));
}

std::string base_url::host_header() const {
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
    return out;
}

std::string http_client::request_bytes(const http_request& req) const {
    std::string out = req.method + " " + url_.prefix + req.target + " HTTP/1.1\r\nHost: " + url_.host_header() + "\r\n";
    for (const auto& h : req.headers.entries()) out += h.name + ": " + h.value + "\r\n";
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT")
        out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
    out += "Connection: close\r\nUser-Agent: iron-proxy\r\n\r\n";
    out += req.body;
    return out;
}

asio::awaitable<result<http_reply>> http_client::send(const http_request& req, std::chrono::nanoseconds timeout) const {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    tcp::socket sock(ex);
    tcp::socket* live = &sock;  // the socket the deadline closes (inside the TLS stream once there)
    net::watchdog deadline(ex, [&resolver, &live] {
        resolver.cancel();
        boost::system::error_code ignored;
        live->close(ignored);
    });
    deadline.expires_after(timeout);

    auto [rec, found] = co_await resolver.async_resolve(url_.host, std::to_string(url_.port), use_tuple);
    if (deadline.fired()) co_return make_error(format_timeout(timeout));
    if (rec) co_return make_error("dial tcp: lookup " + url_.host + ": " + rec.message());
    auto [cec, peer] = co_await asio::async_connect(sock, found, use_tuple);
    if (deadline.fired()) co_return make_error(format_timeout(timeout));
    if (cec) co_return make_error("dial tcp " + url_.host + ":" + std::to_string(url_.port) + ": " + cec.message());
    sock.set_option(tcp::no_delay(true));

    const std::string bytes = request_bytes(req);
    result<http_reply> reply = make_error("no reply");
    if (!url_.tls) {
        reply = co_await round_trip(sock, bytes);
    } else {
        net::tls_stream<tcp::socket> stream(std::move(sock), *tls_);
        live = &stream.next_layer();
        if (auto prepared = tls::prepare_client_ssl(stream.native_handle(), url_.host); !prepared)
            co_return make_error("tls: " + prepared.message());
        static constexpr unsigned char h1_only[] = "\x08http/1.1";
        SSL_set_alpn_protos(stream.native_handle(), h1_only, sizeof h1_only - 1);
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
        if (deadline.fired()) co_return make_error(format_timeout(timeout));
        if (hec) {
            std::string why = hec.message();
            const long verify = SSL_get_verify_result(stream.native_handle());
            if (verify != X509_V_OK) why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
            co_return make_error("tls handshake with " + url_.host + ": " + why);
        }
        reply = co_await round_trip(stream, bytes);
        live = &sock;  // the stream (and its socket) goes away before the watchdog
    }
    if (deadline.fired()) co_return make_error(format_timeout(timeout));
    co_return reply;
}

void cancel_handle::cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (running_ != nullptr) running_->stop();
}

bool cancel_handle::cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
}

result<http_reply> http_client::send_blocking(const http_request& req, std::chrono::nanoseconds timeout,
                                              cancel_handle* cancel) const {
    asio::io_context ioc(1);
    std::optional<result<http_reply>> out;
    auto call = [&]() -> asio::awaitable<void> { out.emplace(co_await send(req, timeout)); };
    asio::co_spawn(ioc, call(), asio::detached);
    if (cancel != nullptr) {
        std::lock_guard lock(cancel->mu_);
        if (cancel->cancelled_) return make_error("cancelled");
        cancel->running_ = &ioc;
    }
    ioc.run();
    if (cancel != nullptr) {
        std::lock_guard lock(cancel->mu_);
        cancel->running_ = nullptr;
    }
    if (!out) return make_error("cancelled");
    return std::move(*out);
}

}  // namespace iron::outbound
