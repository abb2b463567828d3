#pragma once
// The upstream adapter for an HTTP/2 origin when the client spoke HTTP/1.1 (exchange/driver.hpp
// says what an adapter provides): one stream on the connection the worker shares with every
// exchange to that origin (h2/client_pool.hpp), as Go's transport speaks h2 to any TLS origin that
// offers it. The request is the client's HTTP/1.1 head as the HTTP/1.1 upstream would send it
// (http/upstream_head.hpp: transforms' fields, hop-by-hop gone, one Host), translated to an HTTP/2
// header block; the response is given to the HTTP/1.1 downstream as an HTTP/1.1 head to frame.
//
// Unlike h2/upstream.hpp (HTTP/2 clients: the body is pumped beside the response, for gRPC), the
// request body goes up whole before the response head is awaited, as over HTTP/1.1: an HTTP/1.1
// client cannot read its response while it still sends. Deadlines: upstream_idle_timeout while
// the body goes up and between response body pieces, upstream_response_header_timeout for the head.
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "exchange/driver.hpp"
#include "h2/connection.hpp"
#include "http/upstream_h1.hpp"
#include "http/upstream_head.hpp"
#include "net/watchdog.hpp"

namespace iron::h2 {

class upstream_for_h1 {
    using failure = exchange::failure;
    using exchange_state = runtime::exchange_state;
    template <class T>
    using awaitable = boost::asio::awaitable<T>;

public:
    upstream_for_h1(std::shared_ptr<connection> c, const config::proxy_config& proxy)
        : conn_(std::move(c)), proxy_(proxy) {}
    // Moved once, into attempt_on's frame, before any I/O (so before the deadline exists).
    upstream_for_h1(upstream_for_h1&& other) noexcept : conn_(std::move(other.conn_)), proxy_(other.proxy_) {}

    // The head (as the HTTP/1.1 downstream prepared it for any origin), then the body: what a
    // transform buffered first, then the rest as the client sends it.
    template <class Down>
    awaitable<std::optional<failure>> send_request(Down& down, exchange_state& st) {
        const auto& req = down.h1_request(st);
        const auto body = down.request_body_plan();
        const bool has_body = !body.prefix.empty() || body.more_unread;
        if (auto f = open_stream(request_head(req), has_body)) co_return f;
        if (!has_body) co_return std::nullopt;
        if (!body.prefix.empty())
            if (auto f = co_await send_piece(st, body.prefix)) co_return f;
        if (body.more_unread && body.prefix.empty() && body.expect_continue)
            if (auto f = co_await down.invite_body()) co_return cancelled(*f);
        for (bool last = !body.more_unread; !last;) {
            exchange::body_read piece = co_await down.read_body(st);
            if (piece.failed) co_return cancelled(*piece.failed);
            if (auto f = co_await send_piece(st, piece.data)) co_return f;
            last = piece.last;
        }
        stream_->finish();  // the client's chunked trailers are not relayed, as over HTTP/1.1
        co_return std::nullopt;
    }

    template <class Down>
    awaitable<std::optional<failure>> read_response_head(exchange_state& st, Down&) {
        return await_head(st);
    }
    exchange::response_head head() const;
    core::header_list header_list() const;
    // The head the HTTP/1.1 downstream rewrites in place for its client (fields and framing are
    // its to set: http/downstream_h1.hpp, prepare_response).
    http::proxy_response& response() { return response_; }
    bool chunked() const { return false; }  // HTTP/2 has no chunked framing
    bool length_known() const { return length_known_; }
    // Body bytes came with the head: the client's first write can carry head and body together.
    bool body_ready() const { return stream_->has_unread(); }

    template <class Down>
    awaitable<exchange::body_read> read_body(exchange_state& st, Down& down) {
        return read_piece(down.response_bytes(st));
    }

    // A response-phase verdict replaced the response: the origin's stream is cancelled.
    void abandon();
    // The stream is cancelled unless it ended cleanly; the connection stays with the pool.
    void end(bool clean);
    bool pumping() const { return false; }  // the body went up whole in send_request
    awaitable<void> pump_done() { co_return; }
    // A graceful shutdown's cut: the stream is reset, which ends any read or write on it.
    static void cut(void* self) { static_cast<upstream_for_h1*>(self)->abandon(); }

private:
    static header_block request_head(const http::proxy_request& req);
    std::optional<failure> open_stream(const header_block& head, bool has_body);
    awaitable<std::optional<failure>> send_piece(exchange_state& st, std::string_view piece);
    awaitable<std::optional<failure>> await_head(exchange_state& st);
    awaitable<exchange::body_read> read_piece(std::uint64_t response_bytes);
    // The client's side failed while its body went up: the origin's stream is cancelled too.
    failure cancelled(failure f);

    std::shared_ptr<connection> conn_;
    const config::proxy_config& proxy_;
    std::shared_ptr<stream> stream_;
    std::optional<net::watchdog> dog_;  // built once the adapter sits in its frame: resets stream_
    http::proxy_response response_;
    bool length_known_ = false;  // the origin said Content-Length (or says_empty_)
    bool head_only_ = false;     // a HEAD request: no body whatever the origin says
    bool says_empty_ = false;    // the stream ended with the head: the client is told Content-Length: 0
    std::string piece_;
};

}  // namespace iron::h2
