#pragma once
// Header translation at the HTTP/2 edges (pure functions, unit-tested): HTTP/2 field blocks
// ↔ the transforms' header list ↔ HTTP/1.1 fields.
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "core/headers.hpp"
#include "h2/connection.hpp"
#include "http/field_allocator.hpp"

namespace iron::h2 {

// Fields that only mean something for one HTTP/1.1 hop and are malformed in HTTP/2 (RFC 9113
// §8.2.2), plus the proxy's own hop-by-hop credentials: Connection, Keep-Alive, Proxy-Connection,
// Transfer-Encoding, Upgrade, Proxy-Authorization, Proxy-Authenticate, and TE other than
// "trailers". `name` is compared case-insensitively.
bool is_connection_specific(std::string_view name, std::string_view value);

// The regular (non-pseudo) fields of a block, for the pipeline, names in canonical form
// ("content-type" → "Content-Type", as Go's HTTP/2 server presents them).
core::header_list to_header_list(const header_block& block);

// Regular fields for an HTTP/2 peer: names lower-cased, connection-specific fields and Host
// (carried by :authority) dropped. Appended to `out`, after any pseudo-headers already there.
void append_h2_fields(const core::header_list& headers, header_block& out);

// Fields for an HTTP/1.1 peer, names as the pipeline left them; HTTP/2's split Cookie fields
// joined with "; " (RFC 9113 §8.2.3); TE dropped.
void set_h1_fields(const core::header_list& headers, boost::beast::http::fields& out);

// From an HTTP/1.1 response head to HTTP/2: hop-by-hop fields (including those named in
// Connection) dropped, names lower-cased.
void append_h1_response_fields(const boost::beast::http::fields& in, header_block& out);
void append_h1_response_fields(const http::proxy_fields& in, header_block& out);

}  // namespace iron::h2
