#pragma once
// serve_h2: the HTTP/2 proxy for one MITM'd client connection that chose "h2" in ALPN. Each
// stream is one exchange, exactly like an HTTP/1.1 request: checks → pipeline.on_request →
// upstream (a shared HTTP/2 connection when the origin speaks h2, else HTTP/1.1 with translation)
// → pipeline.on_response → body and trailers streamed back → one audit record.
#include <boost/asio/awaitable.hpp>

#include "runtime/state.hpp"
#include "net/client_socket.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"

namespace iron::h2 {

// Stream is net::tls_stream<net::client_socket> (ALPN "h2") or net::client_socket
// (cleartext HTTP/2 with prior knowledge, h2c: the origin is then spoken to in h2c too).
// `dog` is the connection's first deadline; HTTP/2 replaces it with its own head and idle deadlines.
template <class Stream>
boost::asio::awaitable<void> serve_h2(Stream& client, runtime::connection_info& conn, net::watchdog& dog);

// The 24-byte connection preface of cleartext HTTP/2 with prior knowledge (RFC 9113 §3.4).
inline constexpr char client_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace iron::h2
