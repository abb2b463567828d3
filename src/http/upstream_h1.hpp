#pragma once
// The upstream adapter for an HTTP/1.1 origin (exchange/driver.hpp says what an adapter provides),
// over plain TCP or TLS, for HTTP/1.1 and HTTP/2 clients alike. Bodies stream through one relay
// buffer the downstream lends: nothing is held beyond one piece, so SSE and large transfers flow
// with bounded memory. Deadlines: upstream_idle_timeout for every read and write,
// upstream_response_header_timeout for the response head once the request is out.
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>

#include "exchange/driver.hpp"
#include "http/body_io.hpp"
#include "http/messages.hpp"
#include "http/relay_stock.hpp"
#include "http/request_guard.hpp"
#include "http/request_parser.hpp"
#include "http/upstream.hpp"
#include "net/await.hpp"

namespace iron::http {

// Interim 1xx responses skipped before the final one (a bound on a hostile origin).
inline constexpr int max_interim_responses = 16;

using response_parser = boost::beast::http::response_parser<boost::beast::http::buffer_body, field_allocator<char>>;
using proxy_response = boost::beast::http::response<boost::beast::http::buffer_body, proxy_fields>;

template <class Stream>
class h1_upstream {
public:
    h1_upstream(std::unique_ptr<upstream_conn> conn, Stream& stream, bool reused, runtime::worker_state& worker,
                const config::proxy_config& proxy)
        : conn_(std::move(conn)), stream_(stream), reused_(reused), worker_(worker), proxy_(proxy),
          dog_(conn_->deadline()) {}
    // Moved once, into attempt_on's coroutine frame, before any response exists (Beast's parser
    // cannot move).
    h1_upstream(h1_upstream&& other) noexcept
        : conn_(std::move(other.conn_)), stream_(other.stream_), reused_(other.reused_), worker_(other.worker_),
          proxy_(other.proxy_), dog_(other.dog_) {}

    upstream_conn& connection() { return *conn_; }
    Stream& stream() { return stream_; }

    // Head, then the body: what a transform buffered first, then the rest as the client sends it.
    template <class Down>
    boost::asio::awaitable<std::optional<exchange::failure>> send_request(Down& down, runtime::exchange_state& st) {
        auto& req = down.h1_request(st);
        if (conn_->absolute_via) to_parent_form(req);
        const auto body = down.request_body_plan();
        using serializer = boost::beast::http::request_serializer<boost::beast::http::buffer_body,
                                                                    typename std::decay_t<decltype(req)>::fields_type>;
        serializer sr{req};
        sent_body_ = !body.prefix.empty() || body.more_unread;
        dog_.expires_after(proxy_.upstream_idle_timeout);
        boost::system::error_code ec;
        if (body.prefix.empty() && body.more_unread) {
            // Head alone: the client may be waiting for 100 Continue before it sends the body.
            std::tie(ec, std::ignore) = co_await boost::beast::http::async_write_header(stream_, sr, net::use_tuple);
        } else {
            req.body().data = body.prefix.empty() ? nullptr : const_cast<char*>(body.prefix.data());
            req.body().size = body.prefix.size();
            req.body().more = body.more_unread;
            std::tie(ec, std::ignore) = co_await boost::beast::http::async_write(stream_, sr, net::use_tuple);
            if (ec == boost::beast::http::error::need_buffer) ec = {};
        }
        if (ec) co_return broken_or_stale("writing request: " + ec.message(), true);
        st.request_body_bytes += body.prefix.size();
        if (!body.more_unread) co_return std::nullopt;
        if (body.prefix.empty() && body.expect_continue)
            if (auto f = co_await down.invite_body()) co_return f;
        co_return co_await relay_request_body(down, st, sr, req);
    }

    // The final response head, interim 1xx responses skipped (at most max_interim_responses).
    template <class Down>
    boost::asio::awaitable<std::optional<exchange::failure>> read_response_head(runtime::exchange_state& st,
                                                                                Down& down) {
        dog_.expires_after(proxy_.upstream_response_header_timeout);
        head_only_ = st.ex.method == "HEAD";
        for (int interim = 0;; ++interim) {
            start_head();
            auto [ec, n] = co_await boost::beast::http::async_read_header(stream_, conn_->buffer, *parser_, net::use_tuple);
            if (dog_.fired())
                co_return exchange::upstream_failure(exchange::failure_kind::response_timeout,
                                                     "timeout awaiting response headers");
            if (ec && down.client_left()) co_return exchange::client_failure(exchange::failure_kind::gone, "");
            if (ec)
                co_return broken_or_stale("reading response: " + ec.message(), !parser_->got_some(),
                                          head_read_cause(ec, !parser_->got_some()));
            const unsigned status = parser_->get().result_int();
            if (status < 100 || status >= 200 || status == 101 || interim == max_interim_responses) break;
        }
        auto& res = parser_->get();
        if (conn_->absolute_via && res.result_int() == 407)
            co_return exchange::upstream_failure(exchange::failure_kind::broken,
                                                 "upstream proxy " + conn_->absolute_via->display +
                                                     ": answered 407 Proxy Authentication Required",
                                                 error_kind::parent_auth);
        if (auto bad = check_response_head(request_head_of(res.base(), res.version())))
            co_return broken("ambiguous response framing: " + std::string(bad->reason));
        if (res.result_int() == 101 && !down.expects_upgrade())
            co_return broken("unexpected 101 Switching Protocols from upstream");
        head_fields_ = static_cast<std::size_t>(std::distance(res.begin(), res.end()));
        // Read now: the downstream rewrites this head in place for its client (its own
        // Connection field among them), so by the end it no longer says what the origin wants.
        origin_keeps_alive_ = res.keep_alive();
        co_return std::nullopt;
    }

    exchange::response_head head() const {
        return {static_cast<int>(parser_->get().result_int()), parser_->is_done() || head_only_, false};
    }
    core::header_list header_list() const { return to_header_list(parser_->get().base()); }
    proxy_response& response() { return parser_->get(); }
    // How the origin framed its body: the downstream chooses its client's framing from these.
    bool chunked() const { return parser_->chunked(); }
    bool length_known() const { return parser_->content_length().has_value(); }
    // Body bytes came with the head: the client's first write can carry head and body together.
    bool body_ready() const { return conn_->buffer.size() > 0; }

    template <class Down>
    boost::asio::awaitable<exchange::body_read> read_body(runtime::exchange_state& st, Down& down) {
        auto& res = parser_->get();
        std::vector<char>& buf = down.relay_buffer();
        res.body().data = buf.data();
        res.body().size = buf.size();
        // Beast reads at most the buffer's spare capacity (floor 512 B): without room, a 10 MiB
        // body went through as 512-byte TLS records.
        if (conn_->buffer.capacity() - conn_->buffer.size() < buf.size())
            conn_->buffer.reserve(conn_->buffer.size() + buf.size());
        dog_.expires_after(proxy_.upstream_idle_timeout);
        const boost::system::error_code ec = co_await read_body_some(stream_, conn_->buffer, *parser_);
        if (ec) {
            if (down.client_left()) co_return exchange::body_read{{}, true, down.left_failure(st)};
            co_return exchange::body_read{
                {}, true,
                broken("reading response body: " + (dog_.fired() ? std::string("timeout reading body") : ec.message()) +
                       runtime::bytes_note(down.response_bytes(st), "response"))};
        }
        const std::size_t got = buf.size() - res.body().size;
        co_return exchange::body_read{{buf.data(), got}, parser_->is_done(), std::nullopt};
    }

    // A chunked body's trailers: Beast appends them to the head's fields.
    core::header_list trailers() const {
        core::header_list out;
        std::size_t i = 0;
        for (const auto& f : parser_->get().base())
            if (i++ >= head_fields_) out.add(std::string(f.name_string()), std::string(f.value()));
        return out;
    }

    // A response-phase verdict replaced the response: the origin's rest is never read.
    void abandon() { abandoned_ = true; }

    // Back to the pool when the exchange ended cleanly on a connection the origin keeps open.
    void end(bool clean) {
        if (clean && !abandoned_ && parser_ && parser_->is_done() && origin_keeps_alive_)
            worker_.pool->release(std::move(conn_));
        else
            conn_->close();
    }
    // Nothing goes up beside an HTTP/1.1 exchange: send_request sent the whole body.
    bool pumping() const { return false; }
    boost::asio::awaitable<void> pump_done() { co_return; }

private:
    // Plain HTTP through an http:// parent: the target in absolute form, from the one Host the
    // policy saw, and the parent's credentials (the client's own Proxy-Authorization was dropped
    // with the other hop-by-hop fields). Idempotent: a retry rewrites nothing twice.
    template <class Request>
    void to_parent_form(Request& req) const {
        const auto target = req.target();
        if (!target.empty() && target.front() == '/') {
            std::string absolute = "http://";
            absolute += req[boost::beast::http::field::host];
            absolute += target;
            req.target(absolute);
        }
        if (auto creds = conn_->absolute_via->basic_credentials(); !creds.empty())
            req.set(boost::beast::http::field::proxy_authorization, creds);
    }

    static exchange::failure broken(std::string detail, error_kind cause = error_kind::protocol_error) {
        return exchange::upstream_failure(exchange::failure_kind::broken, std::move(detail), cause);
    }
    // A reused connection that fails before anything of ours could have been taken as a request
    // was closed by the origin while idle: the driver retries once on a fresh one.
    exchange::failure broken_or_stale(std::string detail, bool nothing_back,
                                      error_kind cause = error_kind::connection_closed) const {
        const bool stale = reused_ && !sent_body_ && nothing_back;
        return exchange::upstream_failure(stale ? exchange::failure_kind::stale : exchange::failure_kind::broken,
                                          std::move(detail), cause);
    }
    // Why a response head could not be read, for the client's Proxy-Status.
    static error_kind head_read_cause(const boost::system::error_code& ec, bool nothing_back) {
        namespace bhttp = boost::beast::http;
        if (nothing_back) return error_kind::connection_closed;
        if (ec == bhttp::error::header_limit) return error_kind::response_too_large;
        if (ec == bhttp::error::partial_message || ec == boost::asio::error::eof) return error_kind::response_incomplete;
        return error_kind::protocol_error;
    }

    template <class Down, class Serializer, class Request>
    boost::asio::awaitable<std::optional<exchange::failure>> relay_request_body(Down& down, runtime::exchange_state& st,
                                                                                Serializer& sr, Request& req) {
        while (!sr.is_done()) {
            exchange::body_read piece = co_await down.read_body(st);
            if (piece.failed) co_return piece.failed;
            req.body().data = piece.data.empty() ? nullptr : const_cast<char*>(piece.data.data());
            req.body().size = piece.data.size();
            req.body().more = !piece.last;
            dog_.expires_after(proxy_.upstream_idle_timeout);
            const boost::system::error_code ec = co_await write_body_piece(stream_, sr);
            if (ec) {
                if (down.client_left()) co_return down.left_failure(st);
                co_return broken("writing request body: " + (dog_.fired() ? std::string("timeout writing body") : ec.message()) +
                                     runtime::bytes_note(st.request_body_bytes, "request"),
                                 error_kind::connection_closed);
            }
            st.request_body_bytes += piece.data.size();
            if (piece.last) break;
        }
        co_return std::nullopt;
    }

    // A fresh parser for the next response head (a HEAD response has no body whatever it says).
    void start_head() {
        parser_.emplace();
        parser_->header_limit(max_header_bytes);
        parser_->body_limit(boost::none);
        if (head_only_) parser_->skip(true);
    }

    std::unique_ptr<upstream_conn> conn_;
    Stream& stream_;
    bool reused_;
    runtime::worker_state& worker_;
    const config::proxy_config& proxy_;
    net::watchdog& dog_;  // closes the connection when it fires
    std::optional<response_parser> parser_;
    std::size_t head_fields_ = 0;
    bool head_only_ = false;
    bool sent_body_ = false;
    bool abandoned_ = false;
    bool origin_keeps_alive_ = false;  // the origin's response head allowed reuse
};

}  // namespace iron::http
