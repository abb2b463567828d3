#pragma once
// serve_http: the HTTP/1.1 proxy loop for one client connection, plain or TLS. For each exchange:
// read request head → checks → pipeline.on_request → dial (pool) → stream body up → read response
// head → pipeline.on_response → stream body down → one audit record, on every path.
#include <boost/asio/awaitable.hpp>

#include "http/context.hpp"
#include "net/watchdog.hpp"

namespace iron::http {

// Stream is net::client_socket or net::tls_stream<net::client_socket> (explicitly
// instantiated in session.cpp). `dog` is the connection's deadline (closes the client socket).
template <class Stream>
boost::asio::awaitable<void> serve_http(Stream& client, connection_info& conn, net::watchdog& dog);

}  // namespace iron::http
