#pragma once
// Pure helpers for HTTP/1.1 messages on the proxy path: request-target parsing, path decoding,
// hop-by-hop header removal (RFC 9110 §7.6.1), and conversions to the transforms' header list.
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "core/headers.hpp"
#include "http/field_allocator.hpp"

namespace iron::http {

struct request_target {
    std::string scheme;     // "http"/"https" for absolute-form, else ""
    std::string authority;  // absolute-form authority, else ""
    std::string path;       // raw (still percent-encoded) path, "/" if empty
    std::string query;      // without '?'
    std::string origin_form() const { return query.empty() ? path : path + "?" + query; }
};

// Origin-form ("/a?b") or absolute-form ("http://h:1/a?b"). nullopt for anything else
// (authority-form and asterisk-form are not valid on the proxying path).
std::optional<request_target> parse_request_target(std::string_view target);

// Percent-decode a path; nullopt on a malformed escape or an encoded NUL.
std::optional<std::string> decode_path(std::string_view raw);

// Any '/'-separated segment exactly "." or ".." (checked on the decoded path, so %2e%2e counts).
bool has_dot_segment(std::string_view decoded_path);

// The checks of a request that look at nothing but its head (no connection state, no I/O), as
// check_request (http/exchange.hpp) applies them: target form, Host present, path decodable and
// free of dot segments, Host port valid. Returns the 400 message, or nothing when they pass.
// `decoded_path` is set as soon as the path decodes, so a later rejection is audited with it.
std::optional<std::string> check_target_and_host(std::string_view host, const std::optional<request_target>& target,
                                                 std::optional<std::string>& decoded_path);

// The functions below take Beast's default fields and proxy_fields (the fields of the proxy's
// HTTP/1.1 parsers, http/field_allocator.hpp) alike.

// Remove Connection, Proxy-Connection, Keep-Alive, Proxy-Authenticate, Proxy-Authorization, TE,
// Trailer, Transfer-Encoding, Upgrade and every header named in Connection. Returns whether the
// client's TE header asked for trailers (so it can be re-added).
bool remove_hop_by_hop(boost::beast::http::fields& fields);
bool remove_hop_by_hop(proxy_fields& fields);

// Upgrade equals "websocket" and Connection lists the token "upgrade" (both case-insensitive,
// comma-separated tokens trimmed, as Go — "notupgrade" does not count).
bool is_websocket_upgrade(const boost::beast::http::fields& fields);
bool is_websocket_upgrade(const proxy_fields& fields);

core::header_list to_header_list(const boost::beast::http::fields& fields);
core::header_list to_header_list(const proxy_fields& fields);
void replace_fields(boost::beast::http::fields& fields, const core::header_list& headers);
void replace_fields(proxy_fields& fields, const core::header_list& headers);

}  // namespace iron::http
