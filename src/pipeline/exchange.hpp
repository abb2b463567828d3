#pragma once
// What a transform sees and may change: one HTTP exchange, or a synthetic request as Go builds
// it: a CONNECT / SOCKS5 check (method CONNECT, host `host:port`, empty path) or an sni-only
// connection (empty method and path, host = SNI). Transforms are pure functions of this object.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "audit/record.hpp"
#include "core/headers.hpp"
#include "pipeline/response_filter.hpp"

namespace iron::core {
class replacement_set;
}

namespace iron::pipeline {

// Values a request-phase transform put into the request that the response must never carry back
// to the client, each mapped to what the client may see instead (secrets with redact_responses:
// the real credentials it swapped in → their placeholders). Tagged with the transform that made
// it, whose on_response uses it. Never logged.
struct response_redaction {
    const void* owner = nullptr;
    std::shared_ptr<const core::replacement_set> values;
};

// A body as transforms see it, up to the cap (unlike Go, a body over the cap is never forwarded
// cut short: see `complete`). Only filled when some
// transform asked for it (transform::wants_request_body); otherwise bodies stream untouched.
struct body_buffer {
    bool present = false;   // the proxy buffered this body for the pipeline
    bool complete = true;   // false: larger than the cap; `data` is only a prefix and transforms
                            // must not modify it (annotate instead); the proxy then forwards the
                            // original bytes or answers 413, per proxy.oversize_body
    bool modified = false;  // a transform changed `data`: the proxy sends it with Content-Length
    // Responses: the origin's body goes on past `data` (over the cap with proxy.oversize_body:
    // forward); the relay sends `data` first, then the rest as it comes.
    bool more_to_read = false;
    std::string data;
};

// A record one of the proxy's own stages keeps across both phases of an exchange and writes into
// the audit record as a group of its own (the MCP policy's `mcp`). Shared with the response filters
// that stage attaches, which add to it while the body streams; written when the record goes out.
class audit_group {
public:
    virtual ~audit_group() = default;
    virtual void write(audit::record& rec) const = 0;
};

// Where a request goes instead of the host it named: the operator's endpoint an MCP gateway route
// chose (mcp/gateway.hpp). Operator configuration, so exempt from upstream_deny_cidrs, and pooled
// apart from the connections workload requests use. Policy, the audit record and response rules
// keep seeing the host the client named. `headers` hold the route's credentials: they are set on
// the outgoing request only, never in exchange::request_headers, which response-phase transforms
// read (and may show to a service of their own).
struct rerouted_upstream {
    std::string host;  // to dial (an IPv6 literal without brackets)
    std::uint16_t port = 0;
    bool tls = false;
    std::string authority;  // the Host it gets
    std::string target;     // the request line's path and query
    core::header_list headers;
};

// The client left while a transform waited on the network for this exchange (a closed connection,
// a reset stream). The downstream watches for it only while such a transform waits
// (exchange/driver.hpp); the waiting transform sets a hook that cancels its call at once rather
// than at its deadline. Used on the exchange's worker thread only.
class client_watch {
public:
    bool client_left() const { return left_; }
    // Runs the hook (once). Called by the downstream.
    void client_leaves();
    // While a call is out; null clears it. Runs at once when the client has already left.
    void on_client_leaving(std::function<void()> hook);

private:
    bool left_ = false;
    std::function<void()> hook_;
};

struct exchange {
    // --- request (may be modified by request-phase transforms) ---
    std::string method;       // "GET", "CONNECT", or "" for sni-only
    std::string host;         // Host header / authority as sent, port included if sent
    std::string policy_host;  // normalised host without port: what rules match against
    std::string path;         // decoded path ("" for CONNECT / sni-only)
    std::string raw_path;     // path as sent (percent-encoding kept); what goes upstream
    std::string raw_query;    // query string without '?', as sent (never logged)
    core::header_list request_headers;
    std::string sni;          // TLS SNI, CONNECT host, or ""
    body_buffer request_body;
    std::string remote_addr;  // client "ip:port"
    std::string mode = "mitm";
    bool is_connect = false;  // synthetic CONNECT/SOCKS5 policy check
    // Requests inside a CONNECT / SOCKS5 tunnel: its target and the tunnel check's traces (owned
    // by the connection, which outlives the exchange); null otherwise.
    const audit::tunnel_info* tunnel = nullptr;

    // Set by body_capture: {request_body, request_body_truncated}. The HTTP layer copies it into
    // audit::record::body_capture (the record's top-level `body_capture` group).
    std::optional<boost::json::object> body_capture;
    // Set by the MCP policy stage when the request matched one of its servers (the record's `mcp`).
    std::shared_ptr<audit_group> mcp_record;
    // Set by the MCP gateway when one of its routes took the request.
    std::optional<rerouted_upstream> reroute;
    // Set by the downstream while a transform waits on the network for this exchange; null otherwise.
    std::shared_ptr<client_watch> watch;

    // --- response (response-phase transforms only) ---
    int status = 0;
    core::header_list response_headers;
    // Only filled when some transform asked for it (transform::wants_response_body), as
    // request_body; a transform that replaces it sets `modified` (the proxy sends Content-Length).
    body_buffer response_body;

    // Set in the request phase, see response_redaction. The HTTP layer applies every one of them
    // itself (redact()) to the only response no response phase sees: a WebSocket 101 handshake.
    std::vector<response_redaction> redactions;
    // Attached in the response phase (attach_response_filter); applied by the HTTP layer.
    response_filter_chain response_filters;

    // Real credentials that request-phase transforms put into this request (swapped or injected
    // secrets, minted tokens, SigV4 signatures and session tokens), each in every form it was
    // written (raw, percent-encoded). What the proxy shows of a request to anyone but its origin
    // (the judge's model) goes through hide_injected() first. Never logged.
    std::vector<std::string> injected_secrets;

    // --- trace of the transform currently running; filled by pipeline::run_* ---
    audit::trace* current_trace = nullptr;
    std::size_t current_trace_index = 0;  // its position in the phase's trace list

    // Attach an annotation to the running transform's trace. Never pass a real secret value.
    void note(std::string_view key, boost::json::value value);
    // Response phase only: have the HTTP layer run `filter` over the body and the trailers; its
    // annotate() later receives the running transform's trace.
    void attach_response_filter(std::unique_ptr<response_filter> filter);
    // Applies every redaction to `text`, a header-like value; returns the number of replacements.
    std::size_t redact(std::string& text) const;
    // The client left while a transform waited (see client_watch).
    bool client_left() const { return watch && watch->client_left(); }
    // Records a real value a transform wrote into the request (empty values are ignored).
    void note_injected(std::string_view value);
    // `text` with every recorded injected value replaced by "[REDACTED]".
    std::string hide_injected(std::string_view text) const;
};

}  // namespace iron::pipeline
