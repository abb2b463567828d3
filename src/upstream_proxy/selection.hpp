#pragma once
// Which parent proxy, if any, an upstream connection goes through (proxy.upstream_proxy, or the
// HTTP_PROXY / HTTPS_PROXY / NO_PROXY environment variables), with the selection rules of Go's
// x/net/http/httpproxy: plain-HTTP origins use http_proxy, TLS origins https_proxy; `localhost`
// and loopback IP literals are never proxied; a NO_PROXY entry is `*`, a domain (itself and its
// subdomains), `.domain` or `*.domain` (subdomains only), an IP or a CIDR, each optionally with
// `:port`. Pure: no I/O, so the config loader validates with it and the unit tests cover it whole.
// Only core is included here.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cidr.hpp"
#include "core/result.hpp"

namespace iron::upstream_proxy {

enum class scheme { http, https, socks5, socks5h };

// One parent proxy, from its URL: `http://user:pass@host:port`. The credentials are kept for the
// handshake only: `display` (what logs, audit records and errors show) never carries the password.
struct parent {
    upstream_proxy::scheme scheme = scheme::http;
    std::string host;  // a name or an IP literal (no brackets)
    std::uint16_t port = 0;
    std::optional<std::string> username, password;  // percent-decoded userinfo, when given
    std::string display;  // "http://user:***@host:port" / "socks5://host:1080"

    // "Basic base64(user:pass)" for Proxy-Authorization, or "" without userinfo.
    std::string basic_credentials() const;
    // "host:port" (IPv6 in brackets): the parent's identity in pool keys.
    std::string authority() const;
};

// Parses a proxy URL the way Go's httpproxy does (a URL without "scheme://" is taken as http://),
// then insists on a scheme we speak (http, https, socks5, socks5h), a host, a port in 1..65535
// (default 80 / 443 / 1080) and nothing after the authority but an optional "/". Error messages
// never repeat the password.
result<parent> parse_parent(std::string_view url);

// The NO_PROXY list: comma-separated, case-insensitive, blank entries skipped.
class no_proxy_list {
public:
    static no_proxy_list parse(std::string_view text);
    // True when `host` (a name or IP literal, no brackets, no port) on `port` must not be proxied.
    bool bypasses(std::string_view host, std::uint16_t port) const;

private:
    struct ip_entry {
        core::ip_address ip;
        std::string port;  // "" = any
    };
    struct domain_entry {
        std::string suffix;  // ".example.com"
        bool match_host = false;  // "example.com" given: the bare name matches too
        std::string port;
    };
    bool all_ = false;
    std::vector<core::cidr> cidrs_;
    std::vector<ip_entry> ips_;
    std::vector<domain_entry> domains_;
};

// The whole selection: what the proxy was configured with, decided once at start-up.
class selector {
public:
    selector() = default;  // no parent: everything direct
    selector(std::optional<parent> http, std::optional<parent> https, no_proxy_list no_proxy);

    // The parent for an origin, or null for a direct connection. `tls` picks https_proxy.
    const parent* choose(std::string_view host, std::uint16_t port, bool tls) const;
    bool any() const { return http_.has_value() || https_.has_value(); }
    const std::optional<parent>& http() const { return http_; }
    const std::optional<parent>& https() const { return https_; }

private:
    std::optional<parent> http_, https_;
    no_proxy_list no_proxy_;
};

// The selection from the three settings (config or environment, already merged). Errors name the
// setting: "http_proxy: unsupported proxy scheme ...". An https:// parent gets TLS to the parent
// itself (upstream_proxy/tls_transport.hpp) before its CONNECT or absolute-form request.
result<selector> make_selector(std::string_view http_proxy, std::string_view https_proxy, std::string_view no_proxy);

// `localhost` or a loopback IP literal: never sent to a parent (Go decides on the request's host,
// not on what it resolves to).
bool is_loopback_host(std::string_view host);

}  // namespace iron::upstream_proxy
