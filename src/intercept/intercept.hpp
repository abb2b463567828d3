#pragma once
// The one place every listener hands a client connection to: sniff the first byte, then TLS MITM
// (leaf minted for the SNI) or plain HTTP, then serve_http. Listeners differ only in how they
// learn the target (Host, SNI, CONNECT authority) and what they audit before handing off.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "runtime/state.hpp"
#include "net/client_socket.hpp"

namespace iron::intercept {

enum class accept_plain { no, yes };

// Serves the connection until it closes. `plain == no` (the HTTPS listener) answers plain HTTP
// with 400; inside a tunnel plain HTTP is served (scheme http).
boost::asio::awaitable<void> serve(net::client_socket sock, runtime::connection_info conn, accept_plain plain);

// Listener entry points (spawned per accepted socket on the acceptor's thread). `peer` is the
// client's address as accept(2) reported it.
boost::asio::awaitable<void> serve_http_listener(boost::asio::ip::tcp::socket sock, boost::asio::ip::tcp::endpoint peer,
                                                 std::shared_ptr<const runtime::shared_state> shared,
                                                 runtime::worker_state* worker);
boost::asio::awaitable<void> serve_https_listener(boost::asio::ip::tcp::socket sock, boost::asio::ip::tcp::endpoint peer,
                                                  std::shared_ptr<const runtime::shared_state> shared,
                                                  runtime::worker_state* worker);

// "ip:port" as audited: IPv4-mapped IPv6 shown as IPv4, IPv6 bracketed.
std::string remote_address(const boost::asio::ip::tcp::endpoint& peer);

}  // namespace iron::intercept
