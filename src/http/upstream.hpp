#pragma once
// Connections to origin servers: dial (directly, resolve + deny-CIDR check in net::dialer, or
// through a parent proxy: upstream_proxy::router), TLS with verification, and a per-thread
// keep-alive pool keyed by (tls, host, port, route).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "core/result.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"
#include "upstream_proxy/router.hpp"

namespace iron::http {

using tcp_socket = boost::asio::ip::tcp::socket;
using tls_socket = net::tls_stream<tcp_socket>;

struct upstream_conn {
    std::variant<tcp_socket, tls_socket> stream;
    boost::beast::flat_buffer buffer;  // bytes read ahead from the origin
    std::string key;
    std::chrono::steady_clock::time_point idle_since;
    bool h2 = false;  // the origin chose HTTP/2 in ALPN (only when it was offered)
    // Set when requests on this connection go to a parent proxy in absolute form (plain HTTP
    // through an http:// parent): the HTTP/1.1 adapter writes the absolute target and the parent's
    // Proxy-Authorization, and a 407 from it is a failure of ours, not the origin's answer.
    const upstream_proxy::parent* absolute_via = nullptr;

    tcp_socket& socket();  // lowest layer, for closing and options
    void close();

    // The deadline of the exchange running on this connection; when it passes, the connection is
    // closed. It lives as long as the connection (the connection never moves: it is always held
    // by a unique_ptr), so a keep-alive exchange does not build and arm a timer of its own: moving
    // a deadline later is free (net::watchdog), and an exchange's deadlines are later than the
    // previous exchange's. The pool disarms it while the connection is idle.
    net::watchdog& deadline();
    std::unique_ptr<net::watchdog> deadline_ = nullptr;  // built by deadline(); last, so destroyed first
};

struct upstream_timeouts {
    std::chrono::steady_clock::duration tls_handshake = std::chrono::seconds(10);
    std::chrono::steady_clock::duration idle = std::chrono::seconds(90);
    std::size_t max_idle_per_key = 32;
    std::size_t max_idle_total = 512;
};

class upstream_pool {
public:
    upstream_pool(upstream_proxy::router& router, boost::asio::ssl::context& client_tls, upstream_timeouts timeouts);

    // A pooled idle connection if a healthy one exists (`reused` = true), else a new one.
    // Errors are client-safe messages for the audit record and map to 502.
    boost::asio::awaitable<result<std::unique_ptr<upstream_conn>>> acquire(std::string host, std::uint16_t port,
                                                                          bool tls, bool& reused);
    // A fresh connection, never from the pool (used to retry after a stale pooled one). With
    // `offer_h2` the TLS handshake offers "h2" before "http/1.1" and upstream_conn::h2 tells
    // which the origin chose. `what` says whether the connection carries HTTP/1.1 requests or,
    // after a WebSocket upgrade or for h2c, opaque bytes (through a parent: a tunnel, never
    // absolute form).
    // `who`: an operator endpoint (an MCP gateway upstream) skips the deny list and has a pool
    // key of its own (upstream_proxy::destination).
    boost::asio::awaitable<result<std::unique_ptr<upstream_conn>>> connect(
        std::string host, std::uint16_t port, bool tls, bool offer_h2 = false,
        upstream_proxy::carriage what = upstream_proxy::carriage::http,
        upstream_proxy::destination who = upstream_proxy::destination::workload);
    // The most recently released idle connection to (host, port, tls) that still looks healthy,
    // or null; stale ones met on the way are closed. Never suspends, so a keep-alive exchange
    // that finds one does not run a coroutine for it.
    std::unique_ptr<upstream_conn> take_idle(const std::string& host, std::uint16_t port, bool tls,
                                             upstream_proxy::carriage what = upstream_proxy::carriage::http,
                                             upstream_proxy::destination who = upstream_proxy::destination::workload);
    // Return a connection whose last exchange completed cleanly and that may be kept alive.
    void release(std::unique_ptr<upstream_conn> conn);

    std::size_t idle_count() const;

private:
    static std::string make_key(const std::string& host, std::uint16_t port, bool tls,
                                const upstream_proxy::route& via);

    upstream_proxy::router& router_;
    boost::asio::ssl::context& client_tls_;
    upstream_timeouts timeouts_;
    // Idle connections per key, most recently released last. While a key has idle connections its
    // vector keeps its capacity, so a release usually allocates nothing; the entry goes with its
    // last connection, so hosts contacted once leave nothing behind.
    std::unordered_map<std::string, std::vector<std::unique_ptr<upstream_conn>>> idle_;
    std::size_t idle_total_ = 0;
};

}  // namespace iron::http
