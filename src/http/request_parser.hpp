#pragma once
// The parser every HTTP/1.1 request from a client goes through, and its limits: one definition for
// the session (session.cpp) and for the fuzzer (tests/fuzz/http1_request_fuzz.cpp), so what is
// fuzzed is exactly what clients reach.
#include <cstdint>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/field_allocator.hpp"

namespace iron::http {

// The largest HTTP/1.1 header block read from a client or an origin.
inline constexpr std::uint32_t max_header_bytes = 64 * 1024;

// Header fields come from per-thread recycled blocks (http/field_allocator.hpp); bodies are read
// piece by piece into a buffer the caller lends (buffer_body).
using request_parser = boost::beast::http::request_parser<boost::beast::http::buffer_body, field_allocator<char>>;

// The limits of a client request: a bounded head, and no body limit because bodies stream through
// and are never buffered by the parser.
inline void limit_client_request(request_parser& parser) {
    parser.header_limit(max_header_bytes);
    parser.body_limit(boost::none);
}

}  // namespace iron::http
