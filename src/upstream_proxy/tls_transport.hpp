#pragma once
// The transport to an https:// parent proxy: TLS to the parent itself (its certificate verified
// against the same trust as origins: the system store plus proxy.upstream_ca_file), then the usual
// CONNECT or absolute-form request inside that session.
//
// Every consumer of an upstream connection (the HTTP/1.1 adapter, TLS to the origin, HTTP/2, the
// byte relays) works on a plain socket. Rather than teach each of them a second stream type, the
// TLS session to the parent is bridged to one end of a socketpair(AF_UNIX) by a relay coroutine,
// and the other end is handed back as the connection's socket. The origin's own TLS then runs over
// it exactly as over a direct TCP connection (TLS inside TLS on the wire). Only byte I/O, shutdown
// and close are ever used on upstream sockets, which a socketpair supports; no port is opened, so
// nothing else on the machine can reach the bridge. The price is one extra copy per byte, paid only
// by the connections that go through an https:// parent.
//
// The relay ends, closing both sides, when either side closes or fails: the pool dropping the
// connection, the origin or the parent hanging up. While it lives it holds the parent's session.
#include <chrono>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/result.hpp"
#include "upstream_proxy/selection.hpp"

namespace iron::upstream_proxy {

// `to_parent` is a connected TCP socket to `via` (an https:// parent). On success, a socket whose
// bytes reach the parent through TLS; on failure the connection is closed and the error (kind
// tls_certificate, tls_handshake or connect_timeout) names the parent by its redacted URL.
boost::asio::awaitable<result<boost::asio::ip::tcp::socket>> open_tls_to_parent(
    boost::asio::ip::tcp::socket to_parent, const parent& via, boost::asio::ssl::context& trust,
    std::chrono::steady_clock::duration handshake_timeout);

}  // namespace iron::upstream_proxy
