#pragma once
// Percent-decoding (RFC 3986 %XX escapes), one implementation for every reader of URLs and
// URL-shaped values: query and path matching, SigV4 canonical queries, OTEL header lists, the
// userinfo of a parent-proxy URL.
#include <optional>
#include <string>
#include <string_view>

namespace iron::core {

// 0-15 for a hex digit (either case), -1 otherwise.
int hex_digit_value(char c);

// %XX escapes decoded; a '%' not followed by two hex digits stays as it is (as browsers and Go's
// lenient readers do). `plus_is_space`: form encoding, where '+' stands for a space.
std::string percent_decode(std::string_view s, bool plus_is_space = false);

// The same, but a '%' that does not start a valid escape makes the whole value invalid (nullopt):
// for values that must be exactly what their writer meant (credentials in a URL).
std::optional<std::string> percent_decode_strict(std::string_view s);

// RFC 3986 percent-encoding: unreserved bytes (A-Z a-z 0-9 - _ . ~) kept, '/' kept when
// `keep_slash`, every other byte %XX with upper-case hex (as SigV4 and query strings want it).
std::string percent_encode(std::string_view s, bool keep_slash = false);

}  // namespace iron::core
