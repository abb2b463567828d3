#pragma once
// Relays bytes both ways between two streams until both directions are done: sni-only
// passthrough, WebSocket after the 101. Nothing is buffered beyond one chunk per direction;
// a half-close on a plain TCP side is propagated (shutdown send), and an idle connection is cut
// after `idle` without traffic in either direction.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "net/client_socket.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"

namespace iron::net {

struct splice_totals {
    std::uint64_t a_to_b = 0;
    std::uint64_t b_to_a = 0;
};

// Half-close support: plain sockets can stop sending and keep receiving; a TLS stream cannot do
// that without close_notify semantics the peer may not expect, so a TLS side ends both ways.
inline bool half_close(boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    s.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    return true;
}
inline bool half_close(client_socket& s) { return half_close(s.socket()); }
template <class Next>
bool half_close(boost::asio::ssl::stream<Next>&) {
    return false;
}
template <class Next>
bool half_close(tls_stream<Next>&) {
    return false;
}

template <class From, class To>
boost::asio::awaitable<void> copy_one_way(From& from, To& to, std::uint64_t& total, watchdog& dog,
                                          std::chrono::steady_clock::duration idle, bool& stop_all) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
        dog.expires_after(idle);
        auto [ec, n] = co_await from.async_read_some(boost::asio::buffer(buf),
                                                     boost::asio::as_tuple(boost::asio::use_awaitable));
        if (n > 0) {
            auto [wec, wn] = co_await boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                                                               boost::asio::as_tuple(boost::asio::use_awaitable));
            total += wn;
            if (wec) {
                stop_all = true;
                break;
            }
        }
        if (ec) {
            if (!half_close(to)) stop_all = true;
            break;
        }
        if (stop_all) break;
    }
    if (stop_all) dog.expires_after(std::chrono::steady_clock::duration::zero());
}

// `dog` must close both streams when it fires (the caller builds it that way).
template <class A, class B>
boost::asio::awaitable<splice_totals> splice(A& a, B& b, watchdog& dog, std::chrono::steady_clock::duration idle) {
    using namespace boost::asio::experimental::awaitable_operators;
    splice_totals totals;
    bool stop_all = false;
    co_await (copy_one_way(a, b, totals.a_to_b, dog, idle, stop_all) &&
              copy_one_way(b, a, totals.b_to_a, dog, idle, stop_all));
    co_return totals;
}

}  // namespace iron::net
