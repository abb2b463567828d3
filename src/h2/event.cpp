#include "h2/event.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::h2 {

namespace asio = boost::asio;

event::event(asio::any_io_executor ex) : timer_(ex, std::chrono::steady_clock::time_point::max()) {}

void event::notify() {
    set_ = true;
    timer_.cancel();
}

asio::awaitable<void> event::wait() {
    if (!set_) co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    set_ = false;
}

}  // namespace iron::h2
