#pragma once
// Connections to origin servers: dial (resolve + deny-CIDR check in net::dialer), TLS with
// verification, and a per-thread keep-alive pool keyed by (tls, host, port).
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

namespace iron::net {
class dialer;
}

namespace iron::http {

using tcp_socket = boost::asio::ip::tcp::socket;
using tls_socket = net::tls_stream<tcp_socket>;

struct upstream_conn {
    std::variant<tcp_socket, tls_socket> stream;
    boost::beast::flat_buffer buffer;  // bytes read ahead from the origin
    std::string key;
    std::chrono::steady_clock::time_point idle_since;
    bool h2 = false;  // the origin chose HTTP/2 in ALPN (only when it was offered)

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
    upstream_pool(net::dialer& dialer, boost::asio::ssl::context& client_tls, upstream_timeouts timeouts);

    // A pooled idle connection if a healthy one exists (`reused` = true), else a new one.
    // Errors are client-safe messages for the audit record and map to 502.
    boost::asio::awaitable<result<std::unique_ptr<upstream_conn>>> acquire(std::string host, std::uint16_t port,
                                                                          bool tls, bool& reused);
    // A fresh connection, never from the pool (used to retry after a stale pooled one). With
    // `offer_h2` the TLS handshake offers "h2" before "http/1.1" and upstream_conn::h2 tells
    // which the origin chose.
    boost::asio::awaitable<result<std::unique_ptr<upstream_conn>>> connect(std::string host, std::uint16_t port,
                                                                          bool tls, bool offer_h2 = false);
    // The most recently released idle connection to (host, port, tls) that still looks healthy,
    // or null; stale ones met on the way are closed. Never suspends, so a keep-alive exchange
    // that finds one does not run a coroutine for it.
    std::unique_ptr<upstream_conn> take_idle(const std::string& host, std::uint16_t port, bool tls);
    // Return a connection whose last exchange completed cleanly and that may be kept alive.
    void release(std::unique_ptr<upstream_conn> conn);

    std::size_t idle_count() const;

private:
    static std::string make_key(const std::string& host, std::uint16_t port, bool tls);

    net::dialer& dialer_;
    boost::asio::ssl::context& client_tls_;
    upstream_timeouts timeouts_;
    // Idle connections per key, most recently released last. While a key has idle connections its
    // vector keeps its capacity, so a release usually allocates nothing; the entry goes with its
    // last connection, so hosts contacted once leave nothing behind.
    std::unordered_map<std::string, std::vector<std::unique_ptr<upstream_conn>>> idle_;
    std::size_t idle_total_ = 0;
};

}  // namespace iron::http
