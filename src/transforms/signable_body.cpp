#include "transforms/signable_body.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/log.hpp"

namespace iron::transforms {

std::optional<body_refusal> check_signable_body(pipeline::exchange& ex, bool allow_chunked, std::string_view transform) {
    const auto& body = ex.request_body;
    const auto declared = ex.request_headers.get("Content-Length");
    const std::int64_t declared_length = declared ? std::strtoll(std::string(*declared).c_str(), nullptr, 10) : -1;
    // The body was not buffered for us (the rules came to match after another transform changed
    // the request): it would go upstream unsigned.
    if (!body.present && (declared_length > 0 || ex.request_headers.contains("Transfer-Encoding"))) {
        if (declared) ex.note("content_length", declared_length);
        return body_refusal{400, "body_missing"};
    }
    if (!body.complete) {
        if (declared) ex.note("content_length", declared_length);
        ex.note("buffered_length", static_cast<std::int64_t>(body.data.size()));
        return body_refusal{413, "body_truncated"};
    }
    // Unknown length: chunked framing, or (HTTP/2) a body sent without content-length.
    const bool unknown = !declared && (ex.request_headers.contains("Transfer-Encoding") || !body.data.empty());
    if (unknown && !allow_chunked) return body_refusal{400, "chunked_body_not_allowed"};
    if (unknown)
        log::warn(std::string(transform) + " signing chunked request body without length verification",
                  {{"host", ex.policy_host}, {"path", ex.path}, {"buffered_length", static_cast<std::int64_t>(body.data.size())}});
    return std::nullopt;
}

}  // namespace iron::transforms
