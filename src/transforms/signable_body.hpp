#pragma once
// Can a signing transform (hmac_sign, aws_auth) sign this request's body whole? A signature over
// part of a body, or over a body the proxy never buffered, would let bytes reach the origin that
// nobody signed, so each such case is refused with the reason the Go proxy gives:
//   413 body_truncated          larger than proxy.max_request_body_bytes (annotates content_length,
//                               buffered_length)
//   400 body_missing            a body the proxy did not buffer (content_length)
//   400 chunked_body_not_allowed  unknown length (chunked, or HTTP/2 without content-length),
//                               unless allow_chunked_body (then signed, with a warning)
#include <optional>
#include <string_view>

#include "pipeline/exchange.hpp"

namespace iron::transforms {

struct body_refusal {
    int status;
    std::string_view reason;
};

// nullopt: the body (possibly empty) is whole in ex.request_body. Annotates the lengths it used.
std::optional<body_refusal> check_signable_body(pipeline::exchange& ex, bool allow_chunked, std::string_view transform);

}  // namespace iron::transforms
