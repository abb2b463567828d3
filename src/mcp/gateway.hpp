#pragma once
// The MCP gateway (top-level `mcp_gateway:`): routes that send an MCP request the policy let
// through to the operator's own endpoint for that server, with credentials the workload never holds.
//
//   mcp_gateway:
//     routes:
//       - name: github                                    # unique, required: mcp.gateway.route
//         rules: [{host: github-mcp.internal, paths: ["/mcp"]}]   # at least one
//         upstream: https://api.githubcopilot.com/mcp/    # http(s), a host, no fragment, no userinfo
//         credentials:
//           - source: {type: env, var: GITHUB_TOKEN}       # any secret source (secrets/parse.hpp)
//             inject: {header: Authorization, formatter: "Bearer {{ .Value }}"}   # or query_param
//             require: true                               # the default: unavailable ⇒ 502
//
// A route applies only to a request that matched an MCP server of the `mcp:` policy and that the
// policy let through (as in the Go proxy); the first route whose rules match wins. The request then
// goes to `upstream` — its path replaces the client's entirely, its query comes first and the
// client's follows — with Host naming the upstream, and each available credential set as a header
// (replacing the client's) or a query parameter (replacing the client's parameters of that name).
// A formatter is a Go text/template with `.Value` and `base64` (the hmac_sign template engine).
// A required credential that is unavailable (or a formatter that fails) answers 502 and the
// upstream is never contacted; an optional one is skipped.
//
// The upstream is the operator's endpoint: upstream_deny_cidrs do not apply to it (a sidecar on
// localhost is the normal deployment), and its connections are pooled apart from workload ones, so
// a workload request naming the same host:port is still judged by the allowlist and the deny list
// like any other. Unlike the Go proxy: unknown keys are errors, a formatter naming a field other
// than .Value is refused at load (Go fails every request), userinfo in `upstream` is refused (use a
// credential), and a WebSocket upgrade to a routed server goes to the route's upstream too.
//
// Audit: mcp.gateway = {route, upstream, credentials_injected: ["<source>:header:<Name>" |
// "<source>:query:<param>"]} — source display names, never values.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/exchange.hpp"
#include "pipeline/rules.hpp"
#include "secrets/source.hpp"
#include "transforms/hmac_sign/go_template.hpp"

namespace iron::mcp {

class mcp_record;

struct gateway_credential {
    std::shared_ptr<secrets::source> source;
    std::string header;       // canonical name; empty when injected as a query parameter
    std::string query_param;  // as configured
    std::optional<transforms::hmac_sign::go_template> formatter;
    bool require = true;
    std::string id;  // what credentials_injected lists
};

struct gateway_route {
    std::string name;
    pipeline::rule_set rules;
    std::string upstream;  // the URL as the audit record shows it
    pipeline::rerouted_upstream target;  // where requests go (no credentials yet)
    std::vector<gateway_credential> credentials;

    std::vector<const secrets::source*> sources() const;
};

class gateway {
public:
    explicit gateway(std::vector<gateway_route> routes) : routes_(std::move(routes)) {}

    // The first route whose rules match the request (its policy host, method, path), or null.
    const gateway_route* match(const pipeline::exchange& ex) const;
    // A remote secret store behind some credential has not answered its first fetch yet.
    bool any_pending() const;
    // SIGHUP / reload: every credential's source re-reads its store.
    void reload() const;
    std::size_t size() const { return routes_.size(); }

private:
    std::vector<gateway_route> routes_;
};

// Points the request at the route's upstream with its credentials (ex.reroute) and records what
// was done in `rec`. An error (a required credential unavailable, a formatter failing) names the
// source, never a value; the request must then not go anywhere.
result<void> route_request(const gateway_route& route, pipeline::exchange& ex, mcp_record& rec);

// Decodes the `mcp_gateway:` section. No routes (or no section) means no gateway: nullopt. Errors
// are "<file>:<line>:<col>: mcp_gateway.routes[i]...: <what>".
result<std::optional<gateway>> parse_gateway(const YAML::Node& node, const std::string& file);

}  // namespace iron::mcp
