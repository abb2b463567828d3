#pragma once
// The DNS server: UDP and TCP (Go: UDP only) on `dns.listen`, answers from dns::codec,
// passthrough names resolved through a net::resolver of its own (so `dns.upstream_resolver` is
// honoured exactly as for upstream dials).
//
// Threading: the whole server lives on the one io_context given to start() (the app passes its
// first worker's). A synthesised answer costs microseconds and passthrough lookups are
// asynchronous, so one thread serves far more queries than a sandbox makes, and nothing is shared
// between threads: no locks, one resolver, one in-flight counter. Spreading it over every worker
// (SO_REUSEPORT) would buy throughput nobody needs at the price of per-thread resolvers and limits.
//
// Bounds (server_limits): at most `max_inflight_lookups` messages waiting on passthrough lookups
// (more ⇒ SERVFAIL), each message's lookups share a `lookup_budget`; at most `max_tcp_connections`
// TCP clients, each closed after `tcp_idle` without a complete query; TCP messages are
// length-prefixed (RFC 1035 §4.2.2, RFC 7766), several per connection, answered in order.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "config/config.hpp"
#include "core/result.hpp"

namespace iron::dns {

struct server_state;  // server.cpp: shared by the server object and its coroutines

struct server_limits {
    std::size_t max_inflight_lookups = 1024;
    std::size_t max_tcp_connections = 256;
    // Below the usual 5 s client timeout, so a client still gets the (empty) answer when the
    // upstream resolver is down.
    std::chrono::milliseconds lookup_budget{4000};
    std::chrono::milliseconds tcp_idle{10000};
};

class server {
public:
    // Validates (`invalid proxy_ip (must be IPv4): "x"`), creates the resolver, binds UDP and then
    // TCP on the same port (port 0: a port free for both), and starts serving once `ioc` runs.
    // Call it before the io_context runs or on its thread. Errors:
    //   dns.listen: invalid listen address ... | listen udp <addr>: bind: <reason> |
    //   listen tcp <addr>: bind: <reason> | dns.upstream_resolver: <reason>
    static result<std::unique_ptr<server>> start(boost::asio::io_context& ioc, const config::dns_config& cfg,
                                                 server_limits limits = {});

    // Closes everything synchronously: destroy it on the io_context's thread or while no thread
    // runs that io_context (before run(), or after its threads were joined), and before the
    // io_context itself.
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    boost::asio::ip::udp::endpoint udp_endpoint() const;
    boost::asio::ip::tcp::endpoint tcp_endpoint() const;
    // The bound address for the start-up log: "127.0.0.1:5353", "[::]:53".
    std::string address() const;
    // Static records that can never match (bad value for their type), for the start-up log.
    const std::vector<std::string>& warnings() const;

    // Stop serving: closes the sockets and fails pending lookups. Safe from any thread (the work is
    // posted to the io_context); idempotent.
    void stop();

private:
    explicit server(std::shared_ptr<server_state> s);
    std::shared_ptr<server_state> s_;
};

}  // namespace iron::dns
