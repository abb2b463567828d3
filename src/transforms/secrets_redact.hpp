#pragma once
// Response redaction for the secrets transform (`redact_responses: true`): an upstream that
// reflects the request (an echo service, an error page quoting the Authorization header) must not
// hand the workload the real credential the proxy swapped in. Every real value this transform
// put into THIS request is mapped back to what the client sent (its placeholder) in the response
// header values, trailers, HTTP/1.1 reason phrase and uncompressed body.
//
// What counts as "a real value put into the request", recorded per request in on_request:
//   * replace: the secret itself; its percent-encoded forms when swapped into the query or path;
//     for an `Authorization: Basic` hit the exact base64 credentials sent (→ the client's base64);
//   * inject (no placeholder exists): the secret and the formatted value → "[REDACTED]".
// Limits (documented in the README): other re-encodings of the secret (JSON escapes, a different
// base64 framing, case changes) are not recognised; header names are not rewritten (values are);
// bodies with a Content-Encoding other than identity are relayed untouched and the trace says
// `redaction: skipped (content-encoding)`; WebSocket frames after the 101 are not rewritten.
#include <string>
#include <string_view>
#include <vector>

#include "core/stream_replace.hpp"
#include "pipeline/exchange.hpp"

namespace iron::transforms {
struct secret_entry;
}

namespace iron::transforms::redact {

// What the client sees instead of an injected value.
inline constexpr std::string_view injected_marker = "[REDACTED]";

// The real values that went into one request while it was transformed: handed to the exchange's
// injected_secrets always (so nothing shows them to a third party), and as response redaction
// rules with redact_responses.
class recorder {
public:
    // A replace entry swapped `secret` in at `locations` ("header:…", "query:…", "path", "body").
    void swapped(const secret_entry& e, std::string_view secret, const std::vector<std::string>& locations);
    // An `Authorization: Basic` value whose decoded credentials were swapped: base64 sent → received.
    void basic(std::string sent_base64, std::string received_base64);
    // An inject entry put `formatted` (rendered from `secret`) into a header or query parameter.
    void injected(const secret_entry& e, std::string_view secret, std::string_view formatted);

    // Hands the rules to the exchange, tagged with `owner` (nothing when none were recorded).
    void publish(const void* owner, pipeline::exchange& ex);
    // Records every real value seen in the exchange's injected_secrets.
    void note_injected(pipeline::exchange& ex) const;

private:
    std::vector<core::replacement_set::rule> rules_;
};

// Response phase: redacts the response header values with `owner`'s rules and attaches the body /
// trailer filter (body untouched when it has a Content-Encoding). No-op without such rules.
void redact_response(const void* owner, pipeline::exchange& ex);

// Does this response carry a Content-Encoding (or Transfer-Encoding) other than identity/chunked?
bool body_is_encoded(const core::header_list& response_headers);

}  // namespace iron::transforms::redact
