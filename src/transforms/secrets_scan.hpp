#pragma once
// Pure string helpers for the secrets transform: token search/replace in header values (with the
// HTTP Basic decode/re-encode rule), in percent-encoded query values and paths *in place*
// (order and the encoding of every other byte stay as the client sent them; Go re-encodes the
// whole query with sorted keys), and std base64. Every function that can rewrite also works as a
// pure search when `replacement` is null, which the transform uses to decide, without the secret,
// whether a placeholder is present.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/percent.hpp"

namespace iron::transforms::scan {

std::string base64_encode(std::string_view in);
// Standard alphabet, padding required (Go's base64.StdEncoding.DecodeString, which tolerates
// non-zero trailing bits). Returns nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view in);

// All non-overlapping occurrences, left to right (Go's strings.ReplaceAll for a non-empty token).
std::string replace_all(std::string_view s, std::string_view token, std::string_view replacement);

// Escape for a query component: everything but RFC 3986 unreserved becomes %XX (space is %20,
// never '+', so the value decodes identically everywhere).
std::string query_escape(std::string_view s);
// Escape for a path: unreserved, sub-delims, ':', '@' and '/' stay literal.
std::string path_escape(std::string_view s);
// Percent-decode (invalid escapes kept literally); `plus_is_space` for query components.
using core::percent_decode;  // %XX decoding (plus_is_space: form encoding)

// Find `token` in the percent-decoded view of `raw` and, when `encoded_replacement` is given,
// replace exactly the raw bytes that encode each occurrence with it. Other bytes are untouched.
// Returns the number of occurrences.
std::size_t swap_encoded(std::string& raw, std::string_view token, const std::string* encoded_replacement,
                         bool plus_is_space);

// Query string (no '?'): scan every `key=value` value; returns the decoded keys of hit values,
// one per hit value, in order. `secret` null = search only.
std::vector<std::string> swap_in_query(std::string& raw_query, std::string_view token, const std::string* secret);

// Set `key` to `value`: the first parameter with that decoded key gets the new value (its raw key
// kept), later duplicates are dropped, and a missing key is appended. Everything else unchanged.
void set_query_param(std::string& raw_query, std::string_view key, std::string_view value);

// Header value rule of the Go proxy: for an Authorization header whose value is "Basic " + valid
// base64, the decoded credentials are searched (and re-encoded after replacement) and the raw
// value is not; otherwise the raw value is searched. Returns whether the token was found.
bool swap_in_header_value(bool is_authorization, std::string& value, std::string_view token, const std::string* secret);

// Bytes that must never be written into a header value (response splitting / smuggling).
bool has_header_breaking_bytes(std::string_view s);

}  // namespace iron::transforms::scan
