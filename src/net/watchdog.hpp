#pragma once
// A per-connection deadline: when it expires the owner's callback runs (it closes the socket, which
// aborts every pending operation on it). Works the same for plain and TLS streams, which per-op
// cancellation does not. Re-arming is cheap: it only moves the expiry.
#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::net {

class watchdog {
public:
    using clock = std::chrono::steady_clock;

    watchdog(boost::asio::any_io_executor ex, std::function<void()> on_expire)
        : s_(std::make_shared<state>(ex, std::move(on_expire))) {
        boost::asio::co_spawn(ex, run(s_), boost::asio::detached);
    }
    ~watchdog() {
        s_->stopped = true;
        s_->on_expire = nullptr;
        s_->timer.cancel();
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

    // Expire `d` from now (replaces any earlier deadline).
    void expires_after(clock::duration d) {
        auto at = clock::now() + d;
        bool sooner = at < s_->expiry;
        s_->expiry = at;
        if (sooner) s_->timer.cancel();  // wake the loop so it re-arms at the earlier time
    }
    void disarm() { s_->expiry = clock::time_point::max(); }
    bool fired() const { return s_->fired; }

private:
    struct state {
        state(boost::asio::any_io_executor ex, std::function<void()> cb) : timer(ex), on_expire(std::move(cb)) {}
        boost::asio::steady_timer timer;
        std::function<void()> on_expire;
        clock::time_point expiry = clock::time_point::max();
        bool stopped = false;
        bool fired = false;
    };

    static boost::asio::awaitable<void> run(std::shared_ptr<state> s) {
        while (!s->stopped) {
            s->timer.expires_at(s->expiry);
            co_await s->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (s->stopped) break;
            if (clock::now() >= s->expiry) {
                s->fired = true;
                if (s->on_expire) s->on_expire();
                break;
            }
        }
    }

    std::shared_ptr<state> s_;
};

// The usual watchdog: when it fires it closes `stream`'s socket, which aborts every operation
// pending on it. Works for a plain socket, net::client_socket and TLS streams over them alike.
// `stream` must outlive the watchdog.
template <class Stream>
watchdog closing_watchdog(Stream& stream) {
    return watchdog(stream.lowest_layer().get_executor(), [&stream] {
        boost::system::error_code ignored;
        stream.lowest_layer().close(ignored);
    });
}

}  // namespace iron::net
