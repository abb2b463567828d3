#pragma once
// A per-connection deadline: when it expires the owner's callback runs (it closes the socket, which
// aborts every pending operation on it). Works the same for plain and TLS streams, which per-op
// cancellation does not. Re-arming is cheap: moving the deadline later only records it.
#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>

namespace iron::net {

class watchdog {
public:
    using clock = std::chrono::steady_clock;

    watchdog(boost::asio::any_io_executor ex, std::function<void()> on_expire)
        : s_(std::make_shared<state>(std::move(ex), std::move(on_expire))) {}
    ~watchdog() {
        s_->stopped = true;
        s_->on_expire = nullptr;
        if (s_->armed != clock::time_point::max()) s_->timer.cancel();
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

    // Expire `d` from now (replaces any earlier deadline). Moving the deadline later only records
    // it (the timer, when it goes off at the old time, re-arms for the new one), so the per-read
    // and per-write re-arming of a busy connection costs no timer operation at all; only an
    // earlier deadline re-arms the timer now.
    void expires_after(clock::duration d) {
        s_->expiry = clock::now() + d;
        if (s_->expiry < s_->armed) arm(s_);
    }
    void disarm() { s_->expiry = clock::time_point::max(); }
    bool fired() const { return s_->fired; }

private:
    struct state {
        state(boost::asio::any_io_executor ex, std::function<void()> cb) : timer(std::move(ex)), on_expire(std::move(cb)) {}
        boost::asio::steady_timer timer;
        std::function<void()> on_expire;
        clock::time_point expiry = clock::time_point::max();  // the deadline
        clock::time_point armed = clock::time_point::max();   // when the timer goes off (<= expiry)
        bool stopped = false;
        bool fired = false;
    };

    // A plain completion handler, not a coroutine: a watchdog is built for every exchange.
    static void arm(const std::shared_ptr<state>& s) {
        s->armed = s->expiry;
        s->timer.expires_at(s->armed);  // cancels the previous wait (its handler sees operation_aborted)
        s->timer.async_wait([s](const boost::system::error_code& ec) {
            if (ec == boost::asio::error::operation_aborted || s->stopped) return;
            if (clock::now() >= s->expiry) {
                s->fired = true;
                s->armed = clock::time_point::max();
                if (s->on_expire) s->on_expire();
                return;
            }
            // Disarmed meanwhile: leave no wait pending (a wait at time_point::max would keep this
            // state, and an operation in the io_context, alive long after the watchdog is gone).
            if (s->expiry == clock::time_point::max()) {
                s->armed = clock::time_point::max();
                return;
            }
            arm(s);  // the deadline moved later meanwhile
        });
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
