#pragma once
// How a response head is prepared for the response filters a response-phase transform attached
// (pipeline/response_filter.hpp), for HTTP/1.1 and HTTP/2 clients; the driver's relay
// (exchange/driver.hpp) runs the body through them. Every entry point is reached only behind a
// `filters.empty()` / null-pointer branch, so a response without filters costs one branch.
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>

#include "http/messages.hpp"
#include "pipeline/exchange.hpp"

namespace iron::http {

// HTTP/2 response head: when the filters rewrite a body that is there, its length may change, so
// content-length goes (DATA frames and END_STREAM frame the body). Returns the chain to apply to
// the body, or null.
pipeline::response_filter_chain* body_filters_for_h2(pipeline::exchange& ex, bool has_body);

// HTTP/1.1 response head, after its framing is chosen: the reason phrase goes through the
// filters; when they rewrite a body that is there, Content-Length goes and the body is chunked.
// Returns the chain to apply to the body, or null.
template <class Response>
pipeline::response_filter_chain* prepare_filtered_response(Response& res, pipeline::response_filter_chain& filters,
                                                           bool no_body) {
    if (filters.empty()) return nullptr;
    std::string reason(res.reason());
    filters.rewrite_text(reason);
    if (reason != res.reason()) res.reason(reason);
    if (no_body || !filters.rewrites_body()) return nullptr;
    res.erase(boost::beast::http::field::content_length);
    res.chunked(true);
    return &filters;
}

// A body a response-phase transform replaced (pipeline::exchange::response_body.modified) goes with
// its exact length, whatever the origin's framing was: the Beast message keeps the origin's framing
// fields through replace_fields, so they are set here.
template <class Response>
void frame_replaced_body(Response& res, const pipeline::exchange& ex) {
    if (!ex.response_body.modified) return;
    res.erase(boost::beast::http::field::transfer_encoding);
    res.content_length(ex.response_body.data.size());
}

// Trailers (any list of {name, value}) through the filters: a reflected value can be there too.
template <class Trailers>
Trailers filtered_trailers(pipeline::exchange& ex, Trailers trailers) {
    if (!ex.response_filters.empty())
        for (auto& t : trailers) ex.response_filters.rewrite_text(t.value);
    return trailers;
}

// A WebSocket 101: no response phase runs for a protocol switch, yet its head may reflect the
// request, so the request phase's redactions (exchange::redactions) apply to its header values
// and reason phrase. The frames that follow are relayed untouched.
template <class Response>
void redact_upgrade_head(Response& res, const pipeline::exchange& ex) {
    if (ex.redactions.empty()) return;
    auto fields = to_header_list(res.base());
    std::size_t n = 0;
    for (auto& f : fields.entries()) n += ex.redact(f.value);
    std::string reason(res.reason());
    n += ex.redact(reason);
    if (n == 0) return;
    replace_fields(res.base(), fields);
    res.reason(reason);
}

}  // namespace iron::http
