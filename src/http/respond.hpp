#pragma once
// Responses the proxy makes itself, written for HTTP/1.1 clients. What they say — status, body,
// Proxy-Status — is decided in exchange/proxy_status.hpp; this only frames it (Content-Length,
// Connection). HTTP/2 streams send the same head (h2/downstream.cpp).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "exchange/proxy_status.hpp"

namespace iron::http {

boost::beast::http::response<boost::beast::http::string_body> make_response(const exchange::proxy_reply& r,
                                                                           bool keep_alive);

// True when the whole response was written.
template <class Stream>
boost::asio::awaitable<bool> write_reply(Stream& s, const exchange::proxy_reply& r, bool keep_alive) {
    auto res = make_response(r, keep_alive);
    auto [ec, n] = co_await boost::beast::http::async_write(
        s, res, boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !ec;
}

}  // namespace iron::http
