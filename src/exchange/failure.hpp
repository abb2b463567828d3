#pragma once
// One error model for the request path. Whatever goes wrong in an exchange — a malformed head, a
// body too large, a dial refused, an origin that stalls or resets, a client that leaves — is a
// `failure`: where it came from, what kind it is, and the detail for the audit record. Exactly one
// function, settle(), turns a failure into what the client is told (status and text, or nothing)
// and what the audit record says (action, status_code, error). The protocol adapters only say how
// to send the reply (HTTP/1.1 error text, an HTTP/2 response or stream reset).
#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace iron::exchange {

enum class source {
    client,    // the workload: its bytes, its pace, its leaving
    proxy,     // our own limits (body size, loop guard)
    upstream,  // the origin: dialing, its bytes, its pace
};

enum class failure_kind {
    malformed,            // client: 400, the detail is also the reply text
    not_implemented,      // client: 501 (a transfer coding we do not know), detail is the reply text
    method_not_allowed,   // client: 405 (CONNECT over HTTP/2), detail is the reply text
    head_timeout,         // client: the request head did not arrive in time; 408 recorded, no reply
    body_timeout,         // client: the request body stopped moving; 408 "request timeout"
    gone,                 // client: left (closed or reset) — client_cancel, never an error reply
    too_large,            // proxy: request body over the cap a transform needed whole; 413
    loop,                 // proxy: the upstream address is this proxy itself; 508
    dial_failed,          // upstream: no connection (resolve, deny CIDR, refused, TLS); 502
    response_timeout,     // upstream: no response head within upstream_response_header_timeout; 504
    broken,               // upstream: failed or reset mid-exchange, or an ambiguous head; 502
    response_too_large,   // upstream: a response body a transform needed whole is over the cap; 502
    stale,                // upstream: a pooled connection the origin had closed; retried once
};

struct failure {
    source from;
    failure_kind kind;
    std::string detail;  // the audit record's error (client-safe: never a secret)
    // HTTP/2 only: the origin's RST_STREAM code, passed on to the client when its stream is cut
    // (gRPC cancels this way); 0 = INTERNAL_ERROR.
    std::uint32_t stream_error = 0;
    // Finer than the kind, where it is known (the dialer, the resolver, the TLS handshake, the
    // response parser): what the reply's Proxy-Status names (exchange/proxy_status.hpp).
    error_kind cause = error_kind::other;
};

// What the client is told and what the audit record says about a failure.
struct settlement {
    const char* action;         // audit action
    int status;                 // audit status_code (and the reply's status when `reply`)
    bool reply;                 // send an error response (false: close or reset instead)
    const char* reply_text;     // the response body's message (nullptr: use the failure's detail)
};

// `response_started`: the client already has a response head, so no error response can follow;
// the status it saw stays in the record and the transfer is cut.
settlement settle(const failure& f, bool response_started);

inline failure client_failure(failure_kind k, std::string detail) { return {source::client, k, std::move(detail), 0, error_kind::other}; }
inline failure upstream_failure(failure_kind k, std::string detail, error_kind cause = error_kind::other) {
    return {source::upstream, k, std::move(detail), 0, cause};
}
inline failure proxy_failure(failure_kind k, std::string detail) { return {source::proxy, k, std::move(detail), 0, error_kind::other}; }

}  // namespace iron::exchange
