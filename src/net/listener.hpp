#pragma once
// Listening sockets. One acceptor per worker thread per listen address, all bound with
// SO_REUSEPORT so the kernel spreads connections across threads (thread per core: a connection
// lives and dies on one thread).
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/result.hpp"

namespace iron::net {

// Parse a Go-style listen address: ":80" (all interfaces), "127.0.0.1:8080", "[::1]:0", "host:port".
result<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& text);

// SO_REUSEPORT (one acceptor per worker thread) lets every socket that sets it share a port, so a
// second listener of ours, or another process of the same user, would silently take part of the
// connections, and two ":0" listeners could even be given the same port. Before the first
// acceptor of a listener is opened, this claims the port the way a plain listener would: a bind
// without SO_REUSEPORT, at once released. Port 0 becomes a free port; a port that anything
// listens on is refused ("listen tcp <addr>: bind: Address already in use").
result<boost::asio::ip::tcp::endpoint> claim_listen_port(const boost::asio::ip::tcp::endpoint& ep,
                                                         const std::string& text);

// Open, SO_REUSEADDR + SO_REUSEPORT + TCP_NODELAY (inherited by every accepted socket), bind,
// listen. Error: "listen tcp <addr>: bind: <reason>".
// `transparent` sets IP_TRANSPARENT so TPROXY can deliver connections for any destination.
result<boost::asio::ip::tcp::acceptor> open_acceptor(boost::asio::any_io_executor ex,
                                                     const boost::asio::ip::tcp::endpoint& ep,
                                                     const std::string& text, bool transparent = false);

// Where the client meant to connect, for connections nftables REDIRECT/DNAT sent us
// (SO_ORIGINAL_DST): "ip:port", IPv6 bracketed; "" for a connection that was not NAT'd.
std::string original_destination(boost::asio::ip::tcp::socket& sock);

// An accepted socket and its peer's address (as accept(2) reported it).
using connection_handler =
    std::function<void(boost::asio::ip::tcp::socket, const boost::asio::ip::tcp::endpoint& peer)>;

// Accepts until the acceptor is closed; each socket goes to `handler` on the acceptor's thread,
// with TCP_NODELAY already on (inherited from the listener open_acceptor made).
// Transient accept errors (EMFILE, ECONNABORTED) are logged and retried after a short pause.
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, connection_handler handler);

}  // namespace iron::net
