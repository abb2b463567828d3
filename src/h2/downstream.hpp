#pragma once
// The downstream adapter for one HTTP/2 stream (exchange/driver.hpp says what an adapter
// provides): the client's request as nghttp2 delivered it, and the response written back on the
// stream. It reaches an origin over HTTP/2 (h2/upstream.hpp) or HTTP/1.1 (http/upstream_h1.hpp),
// as the origin chose in ALPN. Shared (shared_ptr) because the request body pump of an HTTP/2
// upstream runs beside the response relay.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "exchange/driver.hpp"
#include "h2/client_pool.hpp"
#include "h2/connection.hpp"
#include "h2/headers.hpp"
#include "http/response_filtering.hpp"
#include "http/upstream.hpp"
#include "http/upstream_h1.hpp"
#include "net/watchdog.hpp"
#include "runtime/exchange_state.hpp"

namespace iron::h2 {

class h2_upstream;

class h2_downstream : public std::enable_shared_from_this<h2_downstream> {
    using failure = exchange::failure;
    using exchange_state = runtime::exchange_state;
    template <class T>
    using awaitable = boost::asio::awaitable<T>;

public:
    h2_downstream(std::shared_ptr<connection> c, std::shared_ptr<stream> s,
                  std::shared_ptr<runtime::connection_info> info);

    exchange_state st;

    connection& client_connection() { return *client_conn_; }
    stream& client_stream() { return *client_; }
    const runtime::connection_info& info() const { return *conn_; }
    const std::string& authority() const { return authority_; }

    // --- the request phases ---

    // nghttp2 delivered a well-formed head; the ones it refused were audited by the connection.
    std::optional<failure> accept_head() const { return std::nullopt; }
    void identify(exchange_state& st);
    std::optional<failure> guard(exchange_state& st);
    awaitable<std::optional<failure>> buffer_body(exchange_state& st);
    using route = std::variant<failure, client_pool::route>;
    // The worker's HTTP/2 connection to the origin when one is open (the common case), else nothing.
    std::optional<route> pooled(exchange_state& st);
    awaitable<route> connect(exchange_state& st, int attempt);
    // True: the pooled connection was stale (the driver retries on a fresh one).
    awaitable<bool> attempt(exchange_state& st, route r, bool last_attempt);
    // The client's cancel aborts whatever is pending on an HTTP/1.1 upstream connection at once
    // (an HTTP/2 upstream stream is cancelled by send_request's own hook).
    struct closes_on_cancel {
        explicit closes_on_cancel(h2_downstream* d) : down(d) {}
        ~closes_on_cancel() {
            down->tied_ = nullptr;
            down->arm_close_hook();
        }
        closes_on_cancel(const closes_on_cancel&) = delete;
        closes_on_cancel& operator=(const closes_on_cancel&) = delete;
        h2_downstream* down;
    };
    template <class Stream>
    closes_on_cancel tie_upstream(http::h1_upstream<Stream>& up) {
        tied_ = &up.connection();
        arm_close_hook();
        return closes_on_cancel(this);
    }
    struct nothing_tied {};
    nothing_tied tie_upstream(h2_upstream&) { return {}; }

    // While a transform waits on the network: the client's reset reaches the waiting call at once
    // (pipeline::client_watch).
    struct watching_client {
        explicit watching_client(h2_downstream* d) : down(d) {}
        ~watching_client() {
            down->watch_.reset();
            down->arm_close_hook();
        }
        watching_client(const watching_client&) = delete;
        watching_client& operator=(const watching_client&) = delete;
        h2_downstream* down;
    };
    watching_client watch_client(exchange_state& st) {
        watch_ = std::make_shared<pipeline::client_watch>();
        st.ex.watch = watch_;
        arm_close_hook();
        return watching_client(this);
    }

    // --- responses the proxy makes ---

    awaitable<void> reply_error(exchange::proxy_reply reply);
    awaitable<void> reply_verdict(exchange::proxy_reply reply);
    // No response can follow: the client's stream is reset (with the origin's code when the
    // origin reset its stream, CANCEL when the client is gone).
    void abort(const failure& f);
    // The record's response bytes are what went into DATA frames.
    void account(exchange_state& st);

    // --- what an HTTP/1.1 upstream asks of the client side ---

    using h1_message = boost::beast::http::request<boost::beast::http::buffer_body>;
    h1_message& h1_request(exchange_state& st);
    struct body_plan {
        std::string_view prefix;  // read already: the transforms' body when whole, else the bytes read
        bool more_unread = false;
        bool expect_continue = false;
    };
    body_plan request_body_plan() const;
    awaitable<std::optional<failure>> invite_body() { co_return std::nullopt; }
    // The next piece of the client's body; a body that stops moving for client_idle_timeout is
    // cut (its stream reset: a pending read cannot be abandoned otherwise).
    awaitable<exchange::body_read> read_body(exchange_state& st);
    bool client_left() const { return client_->closed(); }
    failure left_failure(const exchange_state& st) const;
    bool expects_upgrade() const { return false; }
    std::vector<char>& relay_buffer();
    std::uint64_t response_bytes(const exchange_state&) const { return client_->body_bytes_sent(); }

    // --- what an HTTP/2 upstream asks ---

    // The bytes that go up before the rest of the stream, and whether they are the whole body.
    std::string_view body_prefix() const;
    bool body_prefix_is_whole() const { return body_prefix_is_whole_ && st.ex.request_body.present; }
    bool request_has_body() const { return !client_->fully_read() || !body_prefix().empty(); }

    // --- the response ---

    template <class Up>
    pipeline::response_filter_chain* prepare_response(exchange_state& st, const exchange::response_head& head, Up&) {
        return http::body_filters_for_h2(st.ex, !head.no_body);
    }
    // The head is submitted to nghttp2 at once: nothing here waits.
    template <class Up>
    std::optional<failure> start_response(exchange_state& st, const exchange::response_head& head, Up& up) {
        header_block block{{":status", std::to_string(head.status)}};
        append_response_fields(st, up, block);
        return send_head(st, head, block);
    }
    bool head_waits() const { return false; }
    awaitable<std::optional<failure>> send_response_head() { co_return std::nullopt; }  // head_waits() is false
    awaitable<std::optional<failure>> send_body(exchange_state& st, std::string_view piece, bool last);
    bool response_unfinished() const { return false; }  // the stream ends in finish_response
    template <class Up>
    void finish_response(exchange_state& st, Up& up) {
        if (response_has_body_) client_->finish(http::filtered_trailers(st.ex, trailers_of(up)));
    }
    // No protocol switch over HTTP/2: an origin's 101 was refused by the upstream adapter.
    template <class Up>
    awaitable<std::optional<failure>> switch_protocols(exchange_state& st, Up& up) {
        (void)st;
        (void)up;
        co_return exchange::upstream_failure(exchange::failure_kind::broken, "unexpected 101 Switching Protocols");
    }

private:
    template <class Stream>
    void append_response_fields(exchange_state& st, http::h1_upstream<Stream>& up, header_block& block) {
        // Transforms may have changed the headers: rebuild the HTTP/1.1 fields from their list
        // before translating, so hop-by-hop filtering sees the final set.
        http::replace_fields(up.response().base(), st.ex.response_headers);
        http::frame_replaced_body(up.response(), st.ex);
        append_h1_response_fields(up.response().base(), block);
    }
    void append_response_fields(exchange_state& st, h2_upstream& up, header_block& block);
    template <class Stream>
    static header_block trailers_of(http::h1_upstream<Stream>& up) {
        return h1_trailers_for_h2(up.trailers());
    }
    static header_block trailers_of(h2_upstream& up);
    static header_block h1_trailers_for_h2(const core::header_list& trailers);
    std::optional<failure> send_head(exchange_state& st, const exchange::response_head& head, const header_block& block);
    // The stream's one close hook serves both: a tied HTTP/1.1 upstream and a watch.
    void arm_close_hook();

    std::shared_ptr<connection> client_conn_;
    std::shared_ptr<stream> client_;
    std::shared_ptr<runtime::connection_info> conn_;
    std::string authority_;
    std::optional<http::request_target> target_;
    std::string body_prefix_;            // request body bytes already read (buffered for transforms)
    bool body_prefix_is_whole_ = false;  // ... and they are all of it
    std::string piece_;                  // the client's last body piece, lent to an HTTP/1.1 upstream
    std::vector<char> relay_;            // read buffer for an HTTP/1.1 origin's response body
    bool response_has_body_ = false;     // the response head said DATA (or trailers) would follow
    std::optional<net::watchdog> body_dog_;  // cuts a request body that stops moving (HTTP/1.1 origin)
    bool body_stalled_ = false;
    h1_message h1_request_;
    http::upstream_conn* tied_ = nullptr;           // closed when the client resets the stream
    std::shared_ptr<pipeline::client_watch> watch_;  // told when the client resets the stream
};

}  // namespace iron::h2
