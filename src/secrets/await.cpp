#include "secrets/await.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::secrets {

bool any_pending(const std::vector<const source*>& sources) {
    for (const auto* s : sources)
        if (s->pending()) return true;
    return false;
}

boost::asio::awaitable<void> await_fetched(std::vector<const source*> sources, std::chrono::nanoseconds timeout) {
    for (const auto* s : sources)
        if (s->pending()) s->demand();
    // The fetch thread cannot safely post to a worker's event loop (it may outlive it at
    // shutdown), so the wait polls the published state: a short tick, only on first use.
    constexpr auto tick = std::chrono::milliseconds(10);
    auto ex = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(ex);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (any_pending(sources) && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(tick);
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) break;  // the worker is shutting down
    }
}

}  // namespace iron::secrets
