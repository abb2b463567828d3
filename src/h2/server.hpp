#pragma once
// serve_h2: the HTTP/2 proxy for one MITM'd client connection that chose "h2" in ALPN. Each
// stream is one exchange, exactly like an HTTP/1.1 request: checks → pipeline.on_request →
// upstream (a shared HTTP/2 connection when the origin speaks h2, else HTTP/1.1 with translation)
// → pipeline.on_response → body and trailers streamed back → one audit record.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "http/context.hpp"
#include "net/client_socket.hpp"
#include "net/watchdog.hpp"

namespace iron::h2 {

// `dog` is the connection's handshake deadline; HTTP/2 replaces it with its own idle timer.
boost::asio::awaitable<void> serve_h2(boost::asio::ssl::stream<net::client_socket>& client,
                                      http::connection_info& conn, net::watchdog& dog);

}  // namespace iron::h2
