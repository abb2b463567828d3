#pragma once
// Synthetic responses written by the proxy itself: error text (Go's http.Error shape: text/plain;
// charset=utf-8, nosniff, body = message + "\n") and transform verdicts (default: 403, text/plain,
// empty body).
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "audit/record.hpp"
#include "pipeline/pipeline.hpp"

namespace iron::http {

boost::beast::http::response<boost::beast::http::string_body> make_error_text(unsigned status,
                                                                              const std::string& message,
                                                                              bool keep_alive);
boost::beast::http::response<boost::beast::http::string_body> make_verdict_response(const pipeline::verdict& v,
                                                                                   bool keep_alive);

template <class Stream>
boost::asio::awaitable<bool> write_response(Stream& s,
                                            boost::beast::http::response<boost::beast::http::string_body> res) {
    auto [ec, n] = co_await boost::beast::http::async_write(
        s, res, boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !ec;
}

template <class Stream>
boost::asio::awaitable<bool> write_error_text(Stream& s, unsigned status, const std::string& message,
                                              bool keep_alive) {
    co_return co_await write_response(s, make_error_text(status, message, keep_alive));
}

template <class Stream>
boost::asio::awaitable<bool> write_verdict(Stream& s, const pipeline::verdict& v, bool keep_alive) {
    co_return co_await write_response(s, make_verdict_response(v, keep_alive));
}

}  // namespace iron::http
