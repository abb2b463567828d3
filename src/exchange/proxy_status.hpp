#pragma once
// Why the proxy answered a request itself, told to the client. Every response the proxy makes — a
// failure settle() answers, a transform's verdict, a refused tunnel handshake — is built here, and
// only here, from the failure model (exchange/failure.hpp) or the verdict, and carries an RFC 9209
// Proxy-Status field:
//
//   Proxy-Status: iron-proxy; error=<RFC 9209 error type>; details="<short reason>"
//
// An agent that gets an empty 403 can then tell a policy denial from a revoked credential. The
// details are the failure's detail or the verdict's reason: texts the proxy wrote itself, never a
// secret nor a request header value; a host the request named appears only after the target
// checks parsed it. They are reduced to printable ASCII and capped. With `proxy.deny_body: reason`
// the same reason is also the response body.
#include <cstddef>
#include <string>
#include <string_view>

#include "core/headers.hpp"
#include "exchange/failure.hpp"
#include "pipeline/pipeline.hpp"

namespace iron::exchange {

// One member of the Proxy-Status list: ours.
struct proxy_status {
    const char* error = "proxy_internal_error";  // an RFC 9209 proxy error type (an sf-token)
    std::string params;   // that type's extra parameters, serialized: `; rcode="NXDOMAIN"`
    std::string details;  // the short reason, as written (made client-safe on output)

    // `iron-proxy; error=<type><params>; details="<details>"` (details omitted when empty).
    std::string field_value() const;
};

proxy_status status_of(const failure& f);
// The verdict that ended a phase; `host` is the request's policy host (named in a denial).
proxy_status status_of(const pipeline::phase_result& decided, std::string_view host);

// What a client may read of a reason: printable ASCII only (anything else becomes '?'), at most
// max_reason_chars characters (longer is cut and ends in "...").
inline constexpr std::size_t max_reason_chars = 200;
std::string client_text(std::string_view reason);
// `s` as an RFC 8941 sf-string: client_text(s), quoted, with `"` and `\` escaped.
std::string sf_string(std::string_view s);

// A response the proxy makes, whatever the protocol: http::make_response writes it for HTTP/1.1
// clients and, through the same head, for HTTP/2 streams.
struct proxy_reply {
    int status = 0;
    core::header_list headers;  // no framing fields: the writer frames the body
    std::string body;
};

// The body, per proxy.deny_body: by default as the Go proxy (empty for a denial, the short status
// text for an error); with `reason_body` one plain-text line, the reason the details give.
// A settled failure the client gets a reply for (s.reply):
proxy_reply reply_to(const failure& f, const settlement& s, bool reason_body);
// A transform's verdict (reject, stub or error) as the response:
proxy_reply reply_to(const pipeline::phase_result& decided, std::string_view host, bool reason_body);

}  // namespace iron::exchange
