#pragma once
// The byte stream under an HTTP/2 connection: any Asio stream (TLS on both sides of the proxy).
// `Stream` may be a reference (the client's TLS stream, owned by the accepting coroutine) or a
// value (an upstream TLS connection the HTTP/2 connection owns).
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "h2/connection.hpp"

namespace iron::h2 {

template <class Stream>
class stream_transport final : public transport {
public:
    explicit stream_transport(Stream s) : s_(std::forward<Stream>(s)) {}

    boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
        boost::asio::mutable_buffer buf) override {
        auto [ec, n] = co_await s_.async_read_some(buf, boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return std::pair{ec, n};
    }
    boost::asio::awaitable<boost::system::error_code> write(boost::asio::const_buffer buf) override {
        auto [ec, n] = co_await boost::asio::async_write(s_, buf, boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return ec;
    }
    void close() override {
        boost::system::error_code ignored;
        s_.lowest_layer().close(ignored);
    }

private:
    Stream s_;
};

}  // namespace iron::h2
