#pragma once
// serve_http: the HTTP/1.1 keep-alive loop of one client connection, plain or TLS. Each request
// head read starts an exchange that exchange::drive_exchange runs through its phases with the
// HTTP/1.1 downstream adapter (http/downstream_h1.hpp); one audit record each, on every path.
#include <boost/asio/awaitable.hpp>

#include "runtime/state.hpp"
#include "net/watchdog.hpp"

namespace iron::http {

// Stream is net::client_socket or net::tls_stream<net::client_socket> (explicitly
// instantiated in session.cpp). `dog` is the connection's deadline (closes the client socket).
template <class Stream>
boost::asio::awaitable<void> serve_http(Stream& client, runtime::connection_info& conn, net::watchdog& dog);

}  // namespace iron::http
