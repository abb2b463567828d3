#pragma once
// Asking a parent proxy for a tunnel, over a TCP connection already made to it: HTTP CONNECT
// (RFC 9110, with Proxy-Authorization: Basic from the URL's userinfo) or SOCKS5 (RFC 1928, with
// RFC 1929 username/password authentication when the URL has userinfo). On success the socket
// carries the origin's bytes; on failure it is closed. Error messages start with the parent's
// redacted URL and never carry a credential; their kind says why for the client's Proxy-Status:
// parent_auth (407, SOCKS5 authentication refused), parent_refused (any other refusal),
// connect_refused / unreachable / connect_timeout (SOCKS5 replies that say so, or no answer in
// time), protocol_error (the parent spoke something else).
#include <chrono>
#include <cstdint>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/result.hpp"
#include "upstream_proxy/selection.hpp"

namespace iron::upstream_proxy {

// "CONNECT host:port HTTP/1.1"; any 2xx opens the tunnel. The parent's reply head is bounded (16 KiB)
// and a parent that sends bytes beyond the head before the origin spoke is a protocol error.
boost::asio::awaitable<result<void>> http_connect(boost::asio::ip::tcp::socket& sock, const parent& via,
                                                  std::string_view host, std::uint16_t port,
                                                  std::chrono::steady_clock::duration timeout);

// SOCKS5 CONNECT to `host` (a name: ATYP domain; an IP literal: ATYP IPv4 / IPv6).
boost::asio::awaitable<result<void>> socks5_connect(boost::asio::ip::tcp::socket& sock, const parent& via,
                                                    std::string_view host, std::uint16_t port,
                                                    std::chrono::steady_clock::duration timeout);

// Pure helpers, for the unit tests: the CONNECT request bytes, and what a reply status line means.
std::string connect_request(const parent& via, std::string_view host, std::uint16_t port);
// 0 when `head` (the reply's head, CRLF CRLF included) is a 2xx, else the status (-1: unparsable).
int connect_reply_status(std::string_view head);

}  // namespace iron::upstream_proxy
