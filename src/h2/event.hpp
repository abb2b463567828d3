#pragma once
// A wake-up between coroutines on one thread (the HTTP/2 connection's streams and exchanges).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace iron::h2 {

// A one-shot wake-up for a coroutine waiting on the same thread: notify() before or during wait()
// both work (the flag remembers it).
class event {
public:
    explicit event(boost::asio::any_io_executor ex);
    boost::asio::any_io_executor executor() { return timer_.get_executor(); }
    void notify();
    boost::asio::awaitable<void> wait();

private:
    boost::asio::steady_timer timer_;
    bool set_ = false;
};

}  // namespace iron::h2
