#pragma once
// The MCP policy in the request path. Not a transform: the proxy's own last stage of the pipeline
// (pipeline::pipeline's last_stage), run after every transform let a request through, so the
// allowlist still decides which hosts are reachable and the policy sees the request as the
// transforms left it. It keeps no transform trace; the audit record gets its `mcp` group instead.
//
// Request: a POST to a matched server has its body buffered (proxy.max_request_body_bytes) and read
// as JSON-RPC, whatever its Content-Type (a server that ignores the header must not become a way
// around the policy). Any message refused refuses the whole body: the client gets HTTP 200 with a
// JSON-RPC error per message (mcp.error's code and message), the server is never contacted, and
// the record's action is `reject` with status 200 (no rejected_by: no transform decided). Refusals:
//   tool_not_allowed     tools/call of a tool the server does not list
//   argument_constraint  a `when` clause does not hold
//   malformed_jsonrpc    not JSON-RPC (or a tools/call without a tool name)
//   oversize_body        larger than the cap when proxy.oversize_body is `forward` (by default
//                        such a body gets the proxy's 413 before any stage reads it)
// Other methods (the GET event stream, DELETE) pass. A request carrying a tools/list has its
// Accept-Encoding removed, so that the answer arrives readable and its tool list can be filtered
// (filters.hpp).
//
// Then the MCP gateway (gateway.hpp), when one is configured: a request the policy let through
// that one of its routes matches goes to that route's upstream with its credentials; a required
// credential that cannot be had ends the exchange with 502 (an error verdict). While a remote
// secret store behind a credential has not answered its first fetch, the stage awaits it on the
// worker's event loop (awaits_request) instead of failing the request.
#include <memory>
#include <optional>
#include <string_view>

#include "mcp/gateway.hpp"
#include "mcp/policy.hpp"
#include "pipeline/transform.hpp"

namespace iron::mcp {

class policy_stage final : public pipeline::transform {
public:
    explicit policy_stage(policy p, std::optional<gateway> g = std::nullopt)
        : policy_(std::make_shared<const policy>(std::move(p))),
          gateway_(g ? std::make_shared<const gateway>(std::move(*g)) : nullptr) {}

    std::string_view name() const override { return "mcp"; }
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    pipeline::verdict on_response(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override;
    void refresh() const override;

    const policy& rules() const { return *policy_; }

private:
    pipeline::verdict check_policy(pipeline::exchange& ex) const;
    // The gateway route for a request the policy let through, if one matches.
    const gateway_route* route_for(const pipeline::exchange& ex) const;
    pipeline::verdict route_through(const gateway_route& route, pipeline::exchange& ex) const;

    std::shared_ptr<const policy> policy_;
    std::shared_ptr<const gateway> gateway_;  // null: no mcp_gateway routes
};

}  // namespace iron::mcp
