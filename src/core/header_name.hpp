#pragma once
// Header-name spelling as Go writes it, for the names transforms record and set.
#include <string>
#include <string_view>

namespace iron::core {

// Go's textproto.CanonicalMIMEHeaderKey: "x-api-key" -> "X-Api-Key". A name holding a byte that
// is not an RFC 9110 token character is returned unchanged (as Go does). Defined in headers.cpp.
std::string canonical_header_name(std::string_view name);

}  // namespace iron::core
