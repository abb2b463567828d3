#include "h2/upstream_for_h1.hpp"

#include <cctype>
#include <cstdlib>

#include <nghttp2/nghttp2.h>

#include "h2/headers.hpp"

namespace iron::h2 {

namespace asio = boost::asio;
using exchange::failure_kind;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

exchange::failure broken(std::string detail, error_kind cause = error_kind::connection_closed) {
    return exchange::upstream_failure(failure_kind::broken, std::move(detail), cause);
}

// Why the stream ended early: the origin's reset, or its whole connection gone.
std::string why_closed(const connection& c, const stream& s) {
    if (c.dead()) return "upstream closed the http2 connection";
    return "upstream reset the stream (http2 error " + std::to_string(s.close_error()) + ")";
}

}  // namespace

// The HTTP/1.1 head prepare_upstream_head built (hop-by-hop fields, Expect and fields named in
// Connection already gone, exactly one Host: the one policy saw) as an HTTP/2 block: Host becomes
// :authority, and what HTTP/2 forbids (RFC 9113 §8.2.2) is left out.
header_block upstream_for_h1::request_head(const http::proxy_request& req) {
    header_block head{{":method", std::string(req.method_string())},
                      {":scheme", "https"},  // HTTP/2 is only offered to TLS origins
                      {":authority", std::string(req[boost::beast::http::field::host])},
                      {":path", std::string(req.target())}};
    for (const auto& f : req) {
        if (core::iequals(f.name_string(), "host") || is_connection_specific(f.name_string(), f.value())) continue;
        head.push_back(header{lower(f.name_string()), std::string(f.value())});
    }
    return head;
}

// A stream that could not be opened sent nothing: the driver may try a fresh route.
std::optional<exchange::failure> upstream_for_h1::open_stream(const header_block& head, bool has_body) {
    std::string error;
    stream_ = conn_->submit_request(head, has_body, error);
    if (!stream_) return exchange::upstream_failure(failure_kind::stale, error, error_kind::connection_closed);
    dog_.emplace(conn_->executor(), [c = conn_, s = stream_] { c->reset(*s, NGHTTP2_CANCEL); });
    return std::nullopt;
}

asio::awaitable<std::optional<exchange::failure>> upstream_for_h1::send_piece(exchange_state& st, std::string_view piece) {
    if (piece.empty()) co_return std::nullopt;
    dog_->expires_after(proxy_.upstream_idle_timeout);  // the origin may withhold its window
    const bool sent = co_await stream_->write(piece);
    if (!sent) {
        const std::string why = dog_->fired() ? "timeout writing body" : why_closed(*conn_, *stream_);
        co_return broken("writing request body: " + why + runtime::bytes_note(st.request_body_bytes, "request"));
    }
    st.request_body_bytes += piece.size();
    co_return std::nullopt;
}

exchange::failure upstream_for_h1::cancelled(exchange::failure f) {
    abandon();
    return f;
}

asio::awaitable<std::optional<exchange::failure>> upstream_for_h1::await_head(exchange_state& st) {
    dog_->expires_after(proxy_.upstream_response_header_timeout);
    const bool got_head = co_await stream_->wait_headers();
    if (!got_head && dog_->fired())
        co_return exchange::upstream_failure(failure_kind::response_timeout, "timeout awaiting response headers");
    if (!got_head) {
        // REFUSED_STREAM: the origin processed nothing (RFC 9113 §8.7), so a bodiless request may
        // go again on a fresh route.
        const bool refused = stream_->close_error() == NGHTTP2_REFUSED_STREAM && stream_->body_bytes_sent() == 0 &&
                             st.request_body_bytes == 0;
        co_return exchange::upstream_failure(refused ? failure_kind::stale : failure_kind::broken,
                                             why_closed(*conn_, *stream_),
                                             error_kind::connection_closed);
    }
    head_only_ = st.ex.method == "HEAD";
    const exchange::response_head h = head();
    if (h.status < 200) co_return broken("unexpected " + std::to_string(h.status) + " from an http2 upstream",
                                         error_kind::protocol_error);
    response_.result(static_cast<unsigned>(h.status));
    response_.version(11);
    // The framing field is the adapter's to give (http::replace_fields keeps it; the other
    // fields come from the transforms' list). HTTP/2 may end a body-carrying response with its
    // head and no Content-Length; to an HTTP/1.1 client that would mean "read until close".
    const std::string* length = find_header(stream_->headers(), "content-length");
    const bool bodiless_status = h.status == 204 || h.status == 304;
    says_empty_ = !length && h.no_body && !bodiless_status && !head_only_;
    if (length) response_.set(boost::beast::http::field::content_length, *length);
    if (says_empty_) response_.set(boost::beast::http::field::content_length, "0");
    length_known_ = length || says_empty_;
    co_return std::nullopt;
}

exchange::response_head upstream_for_h1::head() const {
    const std::string* status = find_header(stream_->headers(), ":status");
    // A HEAD response has no body, whatever the origin sends after its head.
    const bool no_body = head_only_ || (stream_->fully_read() && stream_->trailers().empty());
    return {status ? std::atoi(status->c_str()) : 502, no_body, !stream_->trailers().empty()};
}

core::header_list upstream_for_h1::header_list() const {
    core::header_list fields = to_header_list(stream_->headers());
    if (says_empty_) fields.add("Content-Length", "0");
    return fields;
}

asio::awaitable<exchange::body_read> upstream_for_h1::read_piece(std::uint64_t response_bytes) {
    dog_->expires_after(proxy_.upstream_idle_timeout);
    const auto got = co_await stream_->read(piece_);
    if (got == stream::read_status::data) co_return exchange::body_read{piece_, false, std::nullopt};
    if (got == stream::read_status::end) co_return exchange::body_read{{}, true, std::nullopt};
    // Never a clean end: the HTTP/1.1 client's connection is closed, its body left short.
    const std::string why = dog_->fired() ? "timeout reading body" : why_closed(*conn_, *stream_);
    co_return exchange::body_read{{}, true,
                                  broken("reading response body: " + why + runtime::bytes_note(response_bytes, "response"))};
}

void upstream_for_h1::abandon() {
    if (stream_) conn_->reset(*stream_, NGHTTP2_CANCEL);
}

// A clean end the origin has not finished (a HEAD response it sends a body after) is
// cancelled too: the stream must not stay open on the shared connection.
void upstream_for_h1::end(bool clean) {
    if (dog_) dog_->disarm();
    if (!clean || (stream_ && !stream_->peer_done())) abandon();
}

}  // namespace iron::h2
