#pragma once
// Every upstream connection the proxy makes for a request goes through here: directly (net::dialer,
// deny CIDRs at connect time) or through the parent proxy the selection picked. Through a parent:
//
//   * a TLS origin, a WebSocket or h2c origin and an sni-only relay get a tunnel: HTTP CONNECT to an
//     http:// or https:// parent, or SOCKS5 to a socks5:// / socks5h:// one; what comes back is a socket that
//     carries the origin's bytes, so TLS, ALPN and HTTP/2 run on it as on a direct one;
//   * a plain-HTTP request to an http:// or https:// parent is sent to the parent itself in absolute
//     form (`route::absolute_form`: the HTTP/1.1 adapter writes the target and Proxy-Authorization).
//
// An https:// parent is first wrapped in TLS (upstream_proxy/tls_transport.hpp); what follows runs
// inside that session unchanged.
//
// The deny list still applies (but not to an operator endpoint: see `destination`). The parent's
// own address is operator configuration and exempt from it (the loop guard still applies). The origin's name is resolved here first and every
// address it has is checked: any denied one refuses the request before the parent is dialled.
// socks5:// then sends a checked IP itself (the parent connects to exactly what was checked; when
// it answers that it cannot reach that one, the next checked address is tried, up to four);
// CONNECT and socks5h:// send the name, so the parent resolves it again, perhaps differently (the
// residual risk, documented in docs/compatibility.md). When the name does not resolve here (a
// network whose only way out is the parent often has no outside DNS) the request goes on by name
// for CONNECT, socks5h:// and absolute form, and fails for socks5://, which needs an address. That
// lookup gets at most 5 s, so a black-holed resolver delays a new connection, it does not stall it.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/result.hpp"
#include "net/dialer.hpp"
#include "upstream_proxy/selection.hpp"

namespace iron::upstream_proxy {

// Whose endpoint the connection goes to: one a workload's request named (the deny list applies),
// or one the operator configured for the proxy to use on a workload's behalf (an MCP gateway
// route's upstream): dialled directly (never through a parent, like the proxy's other operator
// endpoints), exempt from the deny list, the loop guard still applies, and never pooled with
// workload connections.
enum class destination { workload, operator_endpoint };

struct route {
    const parent* via = nullptr;  // null: direct
    bool absolute_form = false;   // the request itself goes to the parent (plain HTTP, http:// parent)
    bool operator_endpoint = false;

    // Appended to a pooled connection's key, so a connection made one way is never reused for a
    // request meant to go another: "" direct, " via <parent authority>" / " tunnel via …", and
    // " operator" for an operator endpoint (a workload request naming the same host:port must
    // not ride a connection that skipped the deny list).
    std::string key_suffix() const;
    bool keyed() const { return via != nullptr || operator_endpoint; }
};

// What kind of bytes the connection will carry: HTTP/1.1 requests (plain or over TLS), or opaque
// bytes (WebSocket after the upgrade, h2c, an sni-only relay) which only a tunnel can carry.
enum class carriage { http, opaque };

class router {
public:
    // One per worker, beside its dialer (which must outlive it). `chain` is shared by all workers.
    // `parent_trust` (outliving the router; may be null when no https:// parent is configured)
    // verifies https:// parents: the same trust as origins.
    router(net::dialer& d, std::shared_ptr<const selector> chain, std::chrono::steady_clock::duration handshake_timeout,
           boost::asio::ssl::context* parent_trust = nullptr);

    route choose(std::string_view host, std::uint16_t port, bool tls, carriage what,
                 destination who = destination::workload) const;

    // A connected socket to the origin (direct or through the route's parent). Errors keep the
    // dialer's kinds (address_denied, dns_*, loop_detected, connect_*) or the handshake's
    // (parent_auth, parent_refused, ...), and name the parent by its redacted URL.
    boost::asio::awaitable<result<net::dial_result>> dial(std::string host, std::uint16_t port, route r);

private:
    boost::asio::awaitable<result<net::dial_result>> dial_via(std::string host, std::uint16_t port, route r);
    boost::asio::awaitable<result<net::dial_result>> open_via(const parent& via, std::string target, std::uint16_t port,
                                                              bool absolute_form, bool& tunnel_refused);

    net::dialer& dialer_;
    std::shared_ptr<const selector> chain_;
    std::chrono::steady_clock::duration handshake_timeout_;
    boost::asio::ssl::context* parent_trust_;
};

}  // namespace iron::upstream_proxy
