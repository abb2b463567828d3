#pragma once
// The framing and Host checks of an HTTP/1.1 request head: they run on every field line before
// the proxy trusts the parser's idea of where the body ends or which host the request names.
//
// Why not leave it to the parser: Beast decides framing field by field, so the outcome depends on
// header order. "Transfer-Encoding: xchunked" (or "chunked, identity", or an NBSP before
// "chunked") ahead of a Content-Length is ignored and the body is framed by Content-Length, while
// the same fields in the other order are an error; "Transfer-Encoding: gzip" alone leaves the
// body to be read as the next request; duplicate Content-Length (or "5, 5") and duplicate Host
// fields pass; HTTP/1.0 with chunked is accepted. A peer that reads the same bytes differently
// (the origin, or a proxy in front of this one) then sees another request than policy saw.
//
// Pure (no I/O), so tables and fuzzers can call it.
#include <optional>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/container/small_vector.hpp>

#include "http/field_allocator.hpp"

namespace iron::http {

// The field lines that decide framing and routing, each list in arrival order. The views point
// into the parsed message and are valid while it lives.
struct request_head_view {
    unsigned version = 11;  // 10 = HTTP/1.0, 11 = HTTP/1.1
    boost::container::small_vector<std::string_view, 1> host;
    boost::container::small_vector<std::string_view, 1> content_length;
    boost::container::small_vector<std::string_view, 1> transfer_encoding;
    // Every field name with an '_' in it (rare: no standard field has one).
    boost::container::small_vector<std::string_view, 1> underscore_names;
};

struct head_rejection {
    unsigned status;          // 400, or 501 for a transfer coding the proxy does not implement
    std::string_view reason;  // a fixed text for the response body and the audit record
};

// Underscore aliases. CGI, WSGI, Rack and PHP hand request headers to the application as variables
// (HTTP_CONTENT_LENGTH) with '-' and '_' both mapped to '_', so "Content_Length",
// "Transfer_Encoding" or "Proxy_Authorization" can reach the application as the real field (or
// overwrite it) while the proxy framed, routed and authorized the request without it. The
// rejection, a 400 "header name with underscore aliases <Name>", when `name` has an '_' and, with
// its '_' and '-' dropped, is one of the fields that decide framing, routing or credentials (Host,
// Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Proxy-Authorization,
// Proxy-Connection, Keep-Alive, Trailer, Expect; case-insensitive). Dropping the separators
// rather than reading '_' as '-' fails closed on spellings such as "Host_" or "T_E" too, which an
// origin trimming or collapsing separators could take for the field. Every other name with an '_'
// passes unchanged, as the Go proxy forwards it.
std::optional<head_rejection> check_underscore_name(std::string_view name);

// check_underscore_name over the `.name` of each element: an HTTP/2 header block, a
// core::header_list's entries.
template <class Fields>
std::optional<head_rejection> check_underscore_names(const Fields& fields) {
    for (const auto& f : fields)
        if (auto bad = check_underscore_name(f.name)) return bad;
    return std::nullopt;
}

// Nothing when the head may proceed. Accepted: no name aliasing a field through '_'
// (check_underscore_name); at most one Host line; no Transfer-Encoding, or (HTTP/1.1 only, and then no Content-Length at all) Transfer-Encoding whose codings, over all its
// lines, are exactly one "chunked" (case-insensitive, OWS and empty list elements allowed); at
// most one Content-Length line, and its value plain digits.
std::optional<head_rejection> check_request_head(const request_head_view& head);

// The same framing rules for a response head from an origin (Host lines are not looked at): a
// response the proxy would frame differently from a lenient client is refused (502), never
// relayed, and the upstream connection is not reused.
std::optional<head_rejection> check_response_head(const request_head_view& head);

// Collects the Host, Content-Length and Transfer-Encoding lines of a parsed head.
request_head_view request_head_of(const boost::beast::http::fields& fields, unsigned version);
request_head_view request_head_of(const proxy_fields& fields, unsigned version);

}  // namespace iron::http
