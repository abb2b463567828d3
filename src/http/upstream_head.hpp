#pragma once
// The request head as it goes to an HTTP/1.1 origin, rewritten in place from the client's parsed
// head (no copy on the keep-alive fast path): the transforms' header list, hop-by-hop fields gone
// (a WebSocket upgrade keeps its Connection/Upgrade pair), Expect answered by us and dropped, TE
// kept only as "trailers", exactly one Host, origin-form target, HTTP/1.1, keep-alive, and body
// framing the proxy chose. One definition for the session and its fuzzer
// (tests/fuzz/http1_request_fuzz.cpp), so what is fuzzed is what origins receive.
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "core/headers.hpp"
#include "http/field_allocator.hpp"
#include "pipeline/exchange.hpp"
#include "upstream_proxy/router.hpp"

namespace iron::http {

using proxy_request = boost::beast::http::request<boost::beast::http::buffer_body, proxy_fields>;

// How the body goes upstream.
struct outgoing_framing {
    bool chunked_in = false;      // the client sent it chunked
    bool buffered = false;        // a transform had it buffered (see below)
    bool buffered_whole = false;  // ... all of it: sent with an exact Content-Length
    std::size_t buffered_size = 0;
    bool had_content_length = false;  // the client sent Content-Length
};

// `host` is the Host the request carries when the client's head has none left (the one policy
// saw); `target` the origin-form target. `websocket`: an allowed WebSocket upgrade.
void prepare_upstream_head(proxy_request& req, const core::header_list& headers, std::string_view host,
                           std::string_view target, const outgoing_framing& body, bool websocket);

// A request an MCP gateway route took (pipeline::rerouted_upstream): Host names the route's
// upstream, and its credentials replace the client's fields of the same names. Applied last, after
// the transforms' header list, to HTTP/1.1 heads from either kind of client.
template <class Fields>
void point_at_reroute(Fields& head, const pipeline::rerouted_upstream& to) {
    head.set(boost::beast::http::field::host, to.authority);
    for (const auto& h : to.headers.entries()) head.set(h.name, h.value);
}

// The origin-form target the request goes with: the client's path and query, or the route's.
inline std::string outgoing_target(const pipeline::exchange& ex) {
    if (ex.reroute) return ex.reroute->target;
    return ex.raw_query.empty() ? ex.raw_path : ex.raw_path + "?" + ex.raw_query;
}

inline upstream_proxy::destination destination_of(bool operator_endpoint) {
    return operator_endpoint ? upstream_proxy::destination::operator_endpoint : upstream_proxy::destination::workload;
}

}  // namespace iron::http
