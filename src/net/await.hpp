#pragma once
// The completion token for awaiting an asio or Beast operation on the request path:
//
//   auto [ec, n] = co_await boost::beast::http::async_write(stream, sr, net::use_tuple);
//
// The error comes back as a value (as_tuple), and the operation is awaited as a deferred
// operation, which the calling coroutine suspends on directly. use_awaitable would wrap every read
// and write in a coroutine frame of its own (allocated, pushed and popped: a few hundred
// instructions per operation, several per request).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>

namespace iron::net {

inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::deferred);

}  // namespace iron::net
