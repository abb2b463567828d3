// The configuration used when iron-proxy starts without -config: safe to run unprivileged on a
// workstation (loopback listeners, unprivileged ports, no DNS server) and default-deny, so a
// freshly started proxy never becomes an open relay.
#include <string>

#include "config/config.hpp"

namespace iron::config {

namespace {

constexpr std::string_view k_state_dir_placeholder = "${IRON_STATE_DIR}";

constexpr std::string_view k_default_yaml = R"yaml(# iron-proxy built-in default configuration (used when no -config is given).
# Copy it to a file, edit it, and pass it with -config to change anything.

dns:
  # The DNS server is off: point clients at the proxy with HTTP_PROXY/HTTPS_PROXY or the
  # tunnel listener instead of hijacking their name resolution.
  enabled: false

proxy:
  # Loopback only and unprivileged ports, so no root and no exposure to the network.
  http_listen: "127.0.0.1:8080"
  https_listen: "127.0.0.1:8443"
  # CONNECT + SOCKS5 listener (the usual way to use the proxy from a workstation).
  tunnel_listen: "127.0.0.1:8888"
  # upstream_deny_cidrs is absent on purpose: the built-in list blocks cloud metadata and loopback.

tls:
  mode: mitm
  # The CA that signs the per-host leaf certificates; clients must trust ca.crt.
  ca_cert: "${IRON_STATE_DIR}/ca.crt"
  ca_key: "${IRON_STATE_DIR}/ca.key"

metrics:
  listen: "127.0.0.1:9090"

log:
  level: info

transforms:
  # Default-deny: only these hosts are reachable; every other request gets 403.
  - name: allowlist
    config:
      domains:
        - "example.com"
        - "*.example.com"
)yaml";

// Escapes text for the inside of a double-quoted YAML scalar.
std::string yaml_double_quoted_body(const std::string& s) {
    std::string out;
    static const char* hex = "0123456789abcdef";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::string_view embedded_default_yaml() { return k_default_yaml; }

std::string embedded_default_yaml_for(const std::string& state_dir) {
    std::string text(k_default_yaml);
    const std::string value = yaml_double_quoted_body(state_dir);
    for (std::size_t pos = text.find(k_state_dir_placeholder); pos != std::string::npos;
         pos = text.find(k_state_dir_placeholder, pos + value.size())) {
        text.replace(pos, k_state_dir_placeholder.size(), value);
    }
    return text;
}

}  // namespace iron::config
