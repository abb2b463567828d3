#include "token_mint/cache.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::token_mint {

// One fetch in progress. Callers that join it park on a timer of their own executor; the
// fetch's end wakes each of them by cancelling that timer on its own executor (a timer is not
// safe to touch from another thread).
struct token_cache::flight {
    struct waiter {
        explicit waiter(const boost::asio::any_io_executor& ex) : timer(ex) {}
        boost::asio::steady_timer timer;
    };

    explicit flight(std::string fp) : fingerprint(std::move(fp)) {}

    std::string fingerprint;
    std::mutex mu;
    bool done = false;
    mint_outcome outcome;
    std::vector<std::shared_ptr<waiter>> waiters;

    void finish(const mint_outcome& o) {
        std::lock_guard lock(mu);
        if (done) return;
        done = true;
        outcome = o;
        for (auto& w : waiters) boost::asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
        waiters.clear();
    }
    void forget(const std::shared_ptr<waiter>& w) {
        std::lock_guard lock(mu);
        waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
    }
};

namespace {

constexpr std::chrono::seconds default_lifetime{3600};

}  // namespace

mint_outcome mint_outcome::failure(std::string reason, std::string detail) {
    mint_outcome o;
    o.reason = std::move(reason);
    o.detail = std::move(detail);
    return o;
}

std::chrono::milliseconds refresh_skew(std::chrono::seconds lifetime) {
    if (lifetime <= std::chrono::seconds(0)) lifetime = default_lifetime;
    return std::min<std::chrono::milliseconds>(std::chrono::seconds(60), std::chrono::milliseconds(lifetime) / 2);
}

mint_outcome token_cache::cached(std::string_view fingerprint) const {
    std::lock_guard lock(mu_);
    if (token_.ok() && fingerprint_ == fingerprint && clock::now() < fresh_until_) return token_;
    return mint_outcome::failure("mint_failed", "no fresh token cached");
}

std::uint64_t token_cache::fetches() const {
    std::lock_guard lock(mu_);
    return fetches_;
}

boost::asio::awaitable<mint_outcome> token_cache::get(std::string fingerprint, fetcher fetch,
                                                      std::chrono::nanoseconds wait_bound) {
    std::shared_ptr<flight> joined;
    std::shared_ptr<flight> led;
    {
        std::lock_guard lock(mu_);
        if (token_.ok() && fingerprint_ == fingerprint && clock::now() < fresh_until_) co_return token_;
        if (flight_ && flight_->fingerprint == fingerprint) {
            joined = flight_;
        } else {
            // No fetch for these credentials yet (or one for credentials since replaced): lead one.
            led = std::make_shared<flight>(fingerprint);
            flight_ = led;
            ++fetches_;
        }
    }
    if (joined) co_return co_await join(std::move(joined), wait_bound);
    co_return co_await lead(std::move(led), std::move(fetch));
}

boost::asio::awaitable<mint_outcome> token_cache::lead(std::shared_ptr<flight> f, fetcher fetch) {
    // However this coroutine ends — even destroyed mid-fetch at shutdown — the joined callers are
    // released and the next caller may lead a new fetch.
    struct release {
        token_cache* cache;
        std::shared_ptr<flight> f;
        ~release() { cache->settle(f, mint_outcome::failure("mint_failed", "token fetch abandoned")); }
    } guard{this, f};
    mint_outcome outcome;
    try {
        outcome = co_await fetch();
    } catch (const std::exception& e) {
        outcome = mint_outcome::failure("mint_failed", std::string("token fetch failed: ") + e.what());
    }
    settle(f, outcome);
    co_return outcome;
}

void token_cache::settle(const std::shared_ptr<flight>& f, const mint_outcome& outcome) {
    {
        std::lock_guard lock(mu_);
        if (flight_ == f) {
            flight_.reset();
            if (outcome.ok()) {
                const auto lifetime = outcome.lifetime > std::chrono::seconds(0) ? outcome.lifetime : default_lifetime;
                fingerprint_ = f->fingerprint;
                token_ = outcome;
                fresh_until_ = clock::now() + lifetime - refresh_skew(lifetime);
            }
        }
    }
    f->finish(outcome);  // a no-op when already settled
}

boost::asio::awaitable<mint_outcome> token_cache::join(std::shared_ptr<flight> f, std::chrono::nanoseconds wait_bound) {
    auto w = std::make_shared<flight::waiter>(co_await boost::asio::this_coro::executor);
    w->timer.expires_after(wait_bound);
    {
        std::lock_guard lock(f->mu);
        if (f->done) co_return f->outcome;
        f->waiters.push_back(w);
    }
    struct unregister {
        std::shared_ptr<flight> f;
        std::shared_ptr<flight::waiter> w;
        ~unregister() { f->forget(w); }
    } guard{f, w};
    auto [ec] = co_await w->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    (void)ec;  // woken (cancelled) or timed out: the flight's state says which
    std::lock_guard lock(f->mu);
    if (f->done) co_return f->outcome;
    co_return mint_outcome::failure("mint_failed", "timed out waiting for the token fetch in progress");
}

}  // namespace iron::token_mint
