#pragma once
// The tunnel listener: HTTP CONNECT and SOCKS5. The target is checked against host-level policy
// only (Go ran every transform on it), audited on its own, and the tunnel's bytes then go to
// intercept::serve, where every inner request is checked again.
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "runtime/state.hpp"

namespace iron::tunnel {

// `peer`: the client's address as accept(2) reported it.
boost::asio::awaitable<void> serve_tunnel_listener(boost::asio::ip::tcp::socket sock, boost::asio::ip::tcp::endpoint peer,
                                                   std::shared_ptr<const runtime::shared_state> shared,
                                                   runtime::worker_state* worker);

}  // namespace iron::tunnel
