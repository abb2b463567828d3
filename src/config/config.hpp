#pragma once
// The iron-proxy YAML schema (the Go proxy's keys plus our extensions) as plain structs. Loading
// is strict: unknown keys, duplicate keys, wrong types and bad values are errors naming
// file:line:col and the key path.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"

namespace iron::config {

using duration = std::chrono::nanoseconds;

struct dns_record {
    std::string name, type, value;
};

struct dns_config {
    bool enabled = true;
    std::string listen;  // default ":53" when enabled
    std::string proxy_ip;
    std::string upstream_resolver;
    std::vector<std::string> passthrough;
    std::vector<dns_record> records;
};

struct upstream_proxy_config {
    std::string http_proxy, https_proxy, no_proxy;
};

struct proxy_config {
    // http_listen (string) and http_listens (list) are merged here; default {":80"}.
    std::vector<std::string> http_listens;
    std::string https_listen;   // default ":443"
    std::string tunnel_listen;  // "" = disabled
    std::int64_t max_request_body_bytes = 1048576;
    std::int64_t max_response_body_bytes = 0;
    // Extension (Go forwards such a body cut to the cap): what happens when a transform asked for
    // the request body and the body is larger than max_request_body_bytes (transforms then saw only
    // that prefix and must not rewrite it). "reject" (default): answer 413 and audit it.
    // "forward": stream the complete original body upstream untouched and annotate the trace
    // `body_truncated: true`.
    // A truncated body is never forwarded.
    std::string oversize_body = "reject";
    // Extension: the body of a response the proxy makes itself (a denial, an error). "empty"
    // (default, as Go): a denial's body is empty, an error's is its short status text. "reason":
    // one plain-text line saying why, the reason its Proxy-Status field gives.
    std::string deny_body = "empty";
    // Transparent interception (nftables REDIRECT/DNAT or TPROXY, no DNS cooperation): listeners
    // get IP_TRANSPARENT (so TPROXY can hand them any destination), and a NAT'd connection's
    // original destination (SO_ORIGINAL_DST) is the target when a request names no host.
    bool transparent = false;
    duration upstream_response_header_timeout = std::chrono::seconds(30);
    std::vector<std::string> upstream_deny_cidrs;  // defaults when the key is absent
    // Extension: host globs of cleartext origins that speak HTTP/2 with prior knowledge (h2c, e.g.
    // an insecure gRPC server). A client's cleartext HTTP/2 stream to such a host goes upstream
    // as h2c; to any other cleartext origin it is translated to HTTP/1.1, which every origin
    // speaks (h2c to an ordinary site fails: it rejects the preface).
    std::vector<std::string> upstream_h2c;
    // Extension: whether an HTTP/1.1 client's requests to a TLS origin offer h2 in ALPN, as HTTP/2
    // clients' always do (Go's transport speaks h2 to any TLS origin that offers it, whatever the
    // client spoke). On, an h2-only origin is reachable and a worker's HTTP/1.1 clients share one
    // HTTP/2 connection per origin; off, they always reach the origin over HTTP/1.1.
    bool upstream_h2_for_http1 = true;
    upstream_proxy_config upstream_proxy;
    // Extensions over the Go proxy (which has no client timeouts at all): an extra CA bundle for
    // upstream verification (also SSL_CERT_FILE), and timeouts so a silent client cannot pin
    // resources.
    std::string upstream_ca_file;
    duration client_handshake_timeout = std::chrono::seconds(10);
    duration client_header_timeout = std::chrono::seconds(30);
    duration client_idle_timeout = std::chrono::seconds(120);
    duration upstream_connect_timeout = std::chrono::seconds(30);
    duration upstream_idle_timeout = std::chrono::seconds(90);
    // On SIGTERM/SIGINT, exchanges and tunnels in flight get this long to finish before they are
    // cut (and audited as cut); the Go proxy's shutdown budget is 10 s as well.
    duration shutdown_timeout = std::chrono::seconds(10);
};

struct tls_config {
    std::string mode = "mitm";  // "mitm" | "sni-only"
    std::string ca_cert, ca_key;
    int cert_cache_size = 1000;
    int leaf_cert_expiry_hours = 72;
};

struct log_config {
    std::string level = "info";  // debug|info|warn|error
    std::string audit_path;      // "" = stderr; file created 0600
};

struct metrics_config {
    std::string listen = ":9090";
};

struct management_config {
    std::string listen;
    std::string api_key_env;
    std::string state_path;  // runtime egress rules and mode (egress/state.hpp); "" = changes refused
};

struct control_plane_config {
    duration poll_interval = std::chrono::seconds(10);
};

// A transform's `config:` node, undecoded: the transform's factory parses it (transforms/registry).
// Held behind a pointer so that this header, which every session includes, does not pull in
// yaml-cpp; a factory includes config/yaml_util.hpp to read it.
class raw_node {
public:
    raw_node();                        // a Null node
    raw_node(const YAML::Node& node);  // implicit: a node (with its marks) is kept as is
    const YAML::Node& node() const;

private:
    std::shared_ptr<const YAML::Node> node_;
};

// A transform entry: its name and its raw config node, decoded later by the transform registry.
struct transform_entry {
    std::string name;
    raw_node config;     // may be Null
    std::string where;   // "file:line:col" of the entry, for messages
};

struct config {
    std::string source;  // file path, or "<embedded default>"
    dns_config dns;
    proxy_config proxy;
    tls_config tls;
    std::vector<transform_entry> transforms;
    raw_node mcp;  // the MCP policy section (may be Null), decoded by mcp/policy.hpp
    raw_node mcp_gateway;  // the MCP gateway section (may be Null), decoded by mcp/gateway.hpp
    log_config log;
    metrics_config metrics;
    management_config management;
    control_plane_config control_plane;
    // Keys accepted by the schema but not implemented yet (e.g. "mcp", "control_plane"):
    // reported at startup, never silently ignored.
    std::vector<std::string> not_yet_supported;
    // Sections that gate traffic (postgres) but are not implemented yet: the proxy (and -check)
    // refuses them, "file:line:col: postgres (Postgres proxy): not yet supported".
    std::vector<std::string> refused_sections;
};

// Parse + IRON_* env overrides + defaults + validation (Go's order). Messages are
// "<file>:<line>:<col>: <key.path>: <what>" for positional errors.
result<config> load_file(const std::string& path);
result<config> load_string(std::string_view yaml_text, const std::string& source_name);

// The embedded default used when no -config is given: loopback listeners on unprivileged ports,
// DNS disabled, CA in the state dir, default-deny allowlist.
std::string_view embedded_default_yaml();
// The embedded default with its "${IRON_STATE_DIR}" placeholders (tls.ca_cert / tls.ca_key) replaced
// by `state_dir`, escaped for the double-quoted YAML scalars they sit in.
std::string embedded_default_yaml_for(const std::string& state_dir);

// Parse a Go duration ("30s", "1.5h", "2h45m", "500ms"); bare numbers other than "0" are errors.
result<duration> parse_go_duration(std::string_view text);

}  // namespace iron::config
