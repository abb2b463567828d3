#include "h2/upstream.hpp"

#include <cstdlib>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <nghttp2/nghttp2.h>

#include "h2/downstream.hpp"
#include "h2/headers.hpp"
#include "net/watchdog.hpp"

namespace iron::h2 {

namespace asio = boost::asio;
using exchange::failure_kind;

namespace {

// Client request body (prefix first) → upstream stream, then the client's trailers. Holds the
// downstream (and so the exchange) alive while it runs.
asio::awaitable<void> pump_request(std::shared_ptr<h2_downstream> down, std::shared_ptr<stream> up,
                                   std::shared_ptr<connection> up_conn, std::shared_ptr<pump_state> ps) {
    auto& st = down->st;
    std::string piece(down->body_prefix());
    bool ok = true;
    if (!piece.empty()) ok = co_await up->write(piece);
    if (ok) st.request_body_bytes += piece.size();
    while (ok && !down->body_prefix_is_whole()) {
        auto status = co_await down->client_stream().read(piece);
        if (status == stream::read_status::end) break;
        if (status == stream::read_status::reset) {
            ps->client_reset = true;
            ok = false;
            break;
        }
        ok = co_await up->write(piece);
        if (ok) st.request_body_bytes += piece.size();
        if (ps->on_progress) ps->on_progress();
    }
    if (ok) up->finish(down->client_stream().trailers());
    else if (ps->client_reset) up_conn->reset(*up, NGHTTP2_CANCEL);
    ps->finished = true;
    if (ps->on_finished) ps->on_finished();
    ps->done.notify();
}

header_block request_head(h2_downstream& down, const runtime::exchange_state& st) {
    const auto& ex = st.ex;
    header_block head{{":method", ex.method},
                      {":scheme", down.info().tls ? "https" : "http"},
                      {":authority", down.authority()},
                      {":path", ex.raw_query.empty() ? ex.raw_path : ex.raw_path + "?" + ex.raw_query}};
    core::header_list headers = ex.request_headers;
    if (ex.request_body.present && ex.request_body.complete) {
        headers.erase("content-length");
        headers.add("content-length", std::to_string(ex.request_body.data.size()));
    }
    append_h2_fields(headers, head);
    return head;
}

// A watchdog that resets the upstream stream when the exchange stalls before the response head:
// while the request body is still going up, when no piece moved for client_idle_timeout; once it
// is all out, when the head takes longer than upstream_response_header_timeout. (Counting the
// head timeout from the start of the request cut every upload longer than that timeout.)
struct header_deadline {
    header_deadline(std::shared_ptr<connection> c, std::shared_ptr<stream> s, const config::proxy_config& proxy,
                    pump_state& ps)
        : dog(c->executor(), [c, s, this] {
              fired = true;
              c->reset(*s, NGHTTP2_CANCEL);
          }),
          pump(ps) {
        const auto head_timeout = proxy.upstream_response_header_timeout;
        const auto idle_timeout = proxy.client_idle_timeout;
        if (ps.finished) {
            dog.expires_after(head_timeout);
            return;
        }
        uploading = true;
        dog.expires_after(idle_timeout);
        ps.on_progress = [this, idle_timeout] { dog.expires_after(idle_timeout); };
        ps.on_finished = [this, head_timeout] {
            uploading = false;
            dog.expires_after(head_timeout);
        };
    }
    ~header_deadline() {
        pump.on_progress = nullptr;
        pump.on_finished = nullptr;
    }
    header_deadline(const header_deadline&) = delete;
    header_deadline& operator=(const header_deadline&) = delete;

    net::watchdog dog;
    pump_state& pump;
    bool uploading = false;  // the request body was still going up
    bool fired = false;
};

}  // namespace

h2_upstream::h2_upstream(std::shared_ptr<connection> c, const config::proxy_config& proxy)
    : conn_(std::move(c)), proxy_(proxy), pump_(std::make_shared<pump_state>(conn_->executor())) {
    pump_->finished = true;  // until a pump starts
}

asio::awaitable<std::optional<exchange::failure>> h2_upstream::send_request(h2_downstream& down, exchange_state& st) {
    if (down.client_left())
        co_return exchange::client_failure(failure_kind::gone, "stream reset by client before forwarding");
    std::string error;
    const bool has_body = down.request_has_body();
    stream_ = conn_->submit_request(request_head(down, st), has_body, error);
    if (!stream_) co_return exchange::upstream_failure(failure_kind::broken, error);
    // The client's cancel (or its connection dying) cancels the upstream stream at once, even
    // while we wait for the response head.
    down.client_stream().on_close([c = conn_, s = stream_] { c->reset(*s, NGHTTP2_CANCEL); });
    if (has_body) {
        pump_->finished = false;
        asio::co_spawn(conn_->executor(), pump_request(down.shared_from_this(), stream_, conn_, pump_), asio::detached);
    }
    co_return std::nullopt;
}

asio::awaitable<std::optional<exchange::failure>> h2_upstream::read_response_head(exchange_state& st,
                                                                                  h2_downstream& down) {
    bool got_head = false;
    bool late = false;
    bool upload_stalled = false;
    {
        header_deadline deadline(conn_, stream_, proxy_, *pump_);
        got_head = co_await stream_->wait_headers();
        late = deadline.fired;
        upload_stalled = late && deadline.uploading;
    }
    if (got_head) co_return std::nullopt;
    if (down.client_left()) {
        // The client left mid-upload: say how far it got.
        if (!down.client_stream().peer_done()) co_return down.left_failure(st);
        co_return exchange::client_failure(failure_kind::gone, "");
    }
    if (upload_stalled)
        co_return exchange::client_failure(failure_kind::body_timeout, "timeout reading request body" +
                                                                           runtime::bytes_note(st.request_body_bytes, "request"));
    if (late) co_return exchange::upstream_failure(failure_kind::response_timeout, "timeout awaiting response headers");
    co_return exchange::upstream_failure(failure_kind::broken, "upstream reset the stream (http2 error " +
                                                                   std::to_string(stream_->close_error()) + ")");
}

exchange::response_head h2_upstream::head() const {
    const std::string* status = find_header(stream_->headers(), ":status");
    const bool no_body = stream_->fully_read() && stream_->trailers().empty();
    return {status ? std::atoi(status->c_str()) : 502, no_body, !stream_->trailers().empty()};
}

core::header_list h2_upstream::header_list() const { return to_header_list(stream_->headers()); }

asio::awaitable<exchange::body_read> h2_upstream::read_body(exchange_state& st, h2_downstream& down) {
    const auto got = co_await stream_->read(piece_);
    if (got == stream::read_status::data) co_return exchange::body_read{piece_, false, std::nullopt};
    if (got == stream::read_status::end) co_return exchange::body_read{{}, true, std::nullopt};
    // The client left first: its on_close cancelled this stream.
    if (down.client_left()) co_return exchange::body_read{{}, true, down.left_failure(st)};
    // Passed on to the client as a reset (gRPC cancels this way), never as a clean end.
    exchange::failure f = exchange::upstream_failure(
        failure_kind::broken, "upstream reset the stream mid-body (http2 error " + std::to_string(stream_->close_error()) +
                                  ")" + runtime::bytes_note(down.response_bytes(st), "response"));
    f.stream_error = stream_->close_error();
    co_return exchange::body_read{{}, true, std::move(f)};
}

void h2_upstream::abandon() {
    if (stream_) conn_->reset(*stream_, NGHTTP2_CANCEL);
}

void h2_upstream::end(bool clean) {
    if (!clean) abandon();
}

}  // namespace iron::h2
