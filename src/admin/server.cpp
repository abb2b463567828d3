#include "admin/server.hpp"

#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "core/log.hpp"
#include "net/listener.hpp"

namespace iron::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t max_head_bytes = 8 * 1024;
constexpr std::size_t max_body_bytes = 64 * 1024;
constexpr auto request_timeout = std::chrono::seconds(10);
constexpr int max_connections = 64;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string endpoint_text(const tcp::endpoint& ep) {
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

struct server::impl {
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    handler handle;
    int connections = 0;  // touched only on the server thread
    bool stopped = false;
};

namespace {

// Answers what the parser could not make sense of, the way Go's server does, then closes.
asio::awaitable<void> reply_bad_request(beast::tcp_stream& stream) {
    response res = make_response(400, "400 Bad Request", "text/plain; charset=utf-8");
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(request_timeout);
    co_await bhttp::async_write(stream, res, use_tuple);
}

// One connection: requests in order, each answered by the handler, until the client closes, sends
// garbage, goes quiet for request_timeout, or asks to close.
asio::awaitable<void> serve_connection(server::impl& d, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(max_head_bytes + max_body_bytes);
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(max_head_bytes);
        parser.body_limit(max_body_bytes);
        stream.expires_after(request_timeout);
        auto [read_ec, read_n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
        if (read_ec) {
            const bool quiet_end = read_ec == bhttp::error::end_of_stream || read_ec == beast::error::timeout ||
                                   read_ec == asio::error::connection_reset || read_ec == asio::error::eof ||
                                   read_ec == asio::error::operation_aborted;
            if (!quiet_end) co_await reply_bad_request(stream);
            break;
        }
        const request& req = parser.get();
        response res;
        try {
            res = d.handle(req);
        } catch (const std::exception& e) {
            log::error("admin request failed", {{"error", e.what()}});
            res = make_response(500, "internal error\n", "text/plain; charset=utf-8");
        }
        res.version(11);
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        if (req.method() == bhttp::verb::head) res.body().clear();  // Content-Length stays, no body
        stream.expires_after(request_timeout);
        auto [write_ec, write_n] = co_await bhttp::async_write(stream, res, use_tuple);
        if (write_ec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.socket().close(ignored);
}

void spawn_connection(server::impl& d, tcp::socket socket) {
    ++d.connections;
    asio::co_spawn(d.ioc, serve_connection(d, std::move(socket)), [&d](std::exception_ptr) { --d.connections; });
}

asio::awaitable<void> accept_loop(server::impl& d) {
    for (;;) {
        auto [ec, socket] = co_await d.acceptor.async_accept(use_tuple);
        if (ec == asio::error::operation_aborted || !d.acceptor.is_open()) co_return;
        if (ec) {
            // EMFILE and friends: wait a little rather than spin.
            asio::steady_timer pause(d.ioc, std::chrono::milliseconds(100));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (d.connections >= max_connections) {
            boost::system::error_code ignored;
            socket.close(ignored);  // over the cap: the proxy's own work matters more
            continue;
        }
        spawn_connection(d, std::move(socket));
    }
}

result<void> open_listener(tcp::acceptor& acc, const std::string& listen) {
    auto ep = net::parse_listen_address(listen);
    if (!ep) return make_error("listen " + listen + ": " + ep.message());
    boost::system::error_code ec;
    acc.open(ep->protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc.bind(*ep, ec);
    if (ec) {
        boost::system::error_code ignored;
        acc.close(ignored);
        return make_error("listen tcp " + listen + ": bind: " + ec.message());
    }
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        boost::system::error_code ignored;
        acc.close(ignored);
        return make_error("listen tcp " + listen + ": listen: " + ec.message());
    }
    return ok();
}

}  // namespace

response make_response(unsigned status, std::string body, const char* content_type) {
    response res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, content_type);
    res.body() = std::move(body);
    return res;
}

response not_found() {
    response res = make_response(404, "404 page not found\n", "text/plain; charset=utf-8");
    res.set("X-Content-Type-Options", "nosniff");
    return res;
}

result<std::unique_ptr<server>> server::start(const std::string& listen, handler h) {
    auto d = std::make_unique<impl>();
    d->handle = std::move(h);
    if (auto opened = open_listener(d->acceptor, listen); !opened) return opened.err();
    std::unique_ptr<server> s(new server(std::move(d)));
    s->address_ = endpoint_text(s->impl_->acceptor.local_endpoint());
    impl& ref = *s->impl_;
    asio::co_spawn(ref.ioc, accept_loop(ref), asio::detached);
    s->thread_ = std::thread([&ref] { ref.ioc.run(); });
    return s;
}

server::server(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

server::~server() { stop(); }

void server::stop() {
    if (!impl_ || impl_->stopped) return;
    impl_->stopped = true;
    impl& d = *impl_;
    asio::post(d.ioc, [&d] {
        boost::system::error_code ignored;
        d.acceptor.close(ignored);
    });
    d.ioc.stop();  // connections in progress are abandoned; their frames close their sockets
    if (thread_.joinable()) thread_.join();
}

}  // namespace iron::admin
