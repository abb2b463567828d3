#pragma once
// What the judge tells the model and how it reads the answer: the system prompt (a fixed contract
// around the operator's policy, JSON-escaped so a policy cannot break out of it), the JSON envelope
// describing the request (bounded: URL, header and body budgets, the security-relevant headers
// first so padding cannot push them out), and the lenient parse of the model's JSON decision.
// Pure functions: no I/O.
#include <cstddef>
#include <string>
#include <string_view>

#include "core/headers.hpp"
#include "core/result.hpp"

namespace iron::transforms::judge {

inline constexpr std::size_t max_body_bytes = 16384;
inline constexpr std::size_t max_url_bytes = 2048;
inline constexpr std::size_t max_header_bytes = 4096;       // names + values, all headers
inline constexpr std::size_t max_header_value_bytes = 512;  // one header's (joined) value
inline constexpr std::size_t max_reason_bytes = 512;
inline constexpr std::size_t max_raw_output_bytes = 2048;

std::string system_prompt(std::string_view policy);

// The request as the model sees it. `body` is at most max_body_bytes (the caller cuts it);
// `body_truncated` says there was more (cut here, or only a prefix was buffered).
struct request_view {
    std::string_view method;
    std::string_view url;   // path and query as sent ("/v1/x?a=b")
    std::string_view host;  // Host header / authority as sent
    const core::header_list* headers = nullptr;
    std::string_view body;
    bool body_truncated = false;
};

// {"method","url","host","headers":[{"name","value"}],"body"?,"warnings"?,"multipart_summary"?}
// Header names are canonical (x-api-key → X-Api-Key), repeated ones joined with ", ", Host left
// out (it is `host`). The body is included only when it is valid UTF-8.
std::string build_envelope(const request_view& req);

// `s` with every invalid UTF-8 sequence replaced by U+FFFD (what a JSON encoder must send).
std::string valid_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);

struct decision {
    bool allow = false;
    std::string reason;
};

// The model's answer: surrounding whitespace and one optional ``` / ```json fence tolerated, then
// exactly one JSON object whose "decision" (any case, surrounding spaces ignored) is ALLOW or DENY
// and whose optional "reason" is a string. Anything else is an error (→ the fallback).
result<decision> parse_decision(std::string_view raw);

// Cuts for annotations: reason at 512 bytes, raw output at 2 KiB plus "...", never inside a UTF-8
// sequence.
std::string cap_reason(std::string_view s);
std::string cap_raw_output(std::string_view s);

}  // namespace iron::transforms::judge
