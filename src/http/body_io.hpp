#pragma once
// The body relay's reads and writes on an HTTP/1.1 peer, done at once when the stream can, else
// asynchronously. Every asynchronous completion is posted, and each post costs the worker one
// trip through its scheduler (an epoll_wait with a zero timeout) plus the coroutine's resumption:
// a 10 MiB download made about three per 32 KiB piece, an upload six, and the Go original, whose
// goroutines read until the socket is empty, a tenth of that. Over TLS (net::tls_stream's
// non-waiting forms) a piece that is already there, or a write the kernel takes, costs no trip;
// plain TCP sockets keep the asynchronous path.
#include <cstddef>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "net/await.hpp"
#include "net/tls_stream.hpp"

namespace iron::http {

// Whether the stream has read_some / write_some that never wait (net::tls_stream).
template <class T>
inline constexpr bool has_non_waiting_io = false;
template <class Next>
inline constexpr bool has_non_waiting_io<net::tls_stream<Next>> = true;

// One Beast read_some into `parser` (a buffer_body parser whose body buffer the caller set).
// need_buffer (the body buffer is full) is success.
template <class Stream, class DynamicBuffer, class Parser>
boost::asio::awaitable<boost::system::error_code> read_body_some(Stream& stream, DynamicBuffer& buffer,
                                                                 Parser& parser) {
    boost::system::error_code ec;
    if constexpr (has_non_waiting_io<Stream>) {
        const std::size_t room = parser.get().body().size;
        boost::beast::http::read_some(stream, buffer, parser, ec);
        if (ec == boost::beast::http::error::need_buffer) ec = {};
        // Some body now is a piece to relay; only nothing at all is worth waiting for.
        if (ec != boost::asio::error::would_block || parser.get().body().size != room || parser.is_done())
            co_return ec == boost::asio::error::would_block ? boost::system::error_code{} : ec;
    }
    std::tie(ec, std::ignore) = co_await boost::beast::http::async_read_some(stream, buffer, parser, net::use_tuple);
    if (ec == boost::beast::http::error::need_buffer) ec = {};
    co_return ec;
}

// Beast's write of what the serializer holds now (the head if still due, the body piece its
// buffer_body points at). need_buffer (the piece is out, more is to come) is success.
template <class Stream, class Serializer>
boost::asio::awaitable<boost::system::error_code> write_body_piece(Stream& stream, Serializer& sr) {
    boost::system::error_code ec;
    if constexpr (has_non_waiting_io<Stream>) {
        boost::beast::http::write(stream, sr, ec);
        if (ec == boost::beast::http::error::need_buffer) ec = {};
        if (ec && ec != boost::asio::error::would_block) co_return ec;
        if (stream.output_pending()) {  // the kernel took part: the rest leaves before we go on
            boost::system::error_code flushed;
            std::tie(flushed) = co_await stream.async_flush(net::use_tuple);
            if (flushed) co_return flushed;
        }
        if (!ec) co_return ec;
    }
    std::tie(ec, std::ignore) = co_await boost::beast::http::async_write(stream, sr, net::use_tuple);
    if (ec == boost::beast::http::error::need_buffer) ec = {};
    co_return ec;
}

}  // namespace iron::http
