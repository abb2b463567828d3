#include "aws/credential_cache.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/crypto.h>

#include "core/log.hpp"

namespace iron::aws {

struct credential_cache::snapshot {
    std::optional<credentials> creds;  // the last good ones (kept while a refresh fails)
    std::optional<clock::time_point> expiration;
    clock::time_point resolved_at;
    std::string error;  // why the last resolution failed ("" after a success)
    bool failed = false;

    bool usable(clock::time_point now) const { return creds && (!expiration || now < *expiration); }

    ~snapshot() {
        if (!creds) return;
        for (std::string* s : {&creds->secret_access_key, &creds->session_token})
            if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
    }
};

namespace {

// Demands that arrive while nothing is usable wake the thread, but not more often than this.
constexpr std::chrono::seconds min_spacing{1};

}  // namespace

credential_cache::credential_cache(resolver resolve) : resolve_(std::move(resolve)) {}

credential_cache::~credential_cache() {
    cancel_.cancel();
    std::jthread thread;
    {
        std::lock_guard lock(mu_);
        thread = std::move(thread_);
    }
    if (thread.joinable()) {
        thread.request_stop();
        thread.join();
    }
}

result<credentials> credential_cache::current() const {
    const auto s = state_.load(std::memory_order_acquire);
    if (s && s->usable(clock::now())) return *s->creds;
    if (!s) return make_error("AWS credentials not resolved yet");
    if (s->failed) return make_error(s->error);
    return make_error("AWS credentials expired");
}

bool credential_cache::needs_wait() const {
    const auto s = state_.load(std::memory_order_acquire);
    return !s || !s->usable(clock::now());
}

void credential_cache::demand() const {
    std::lock_guard lock(mu_);
    if (cancel_.cancelled()) return;
    if (!started_) {
        started_ = true;
        auto* self = const_cast<credential_cache*>(this);  // the thread is the cache's only writer
        thread_ = std::jthread([self](std::stop_token st) { self->run(std::move(st)); });
        return;
    }
    if (needs_wait() && !resolving_) {  // a resolution under way answers this demand too
        wake_now_ = true;
        cv_.notify_all();
    }
}

void credential_cache::reload() {
    std::lock_guard lock(mu_);
    if (!started_) return;  // still lazy: the first request resolves
    wake_now_ = true;
    cv_.notify_all();
}

credential_cache::clock::duration credential_cache::next_delay(const snapshot& s) const {
    if (s.failed) return retry_after;
    if (!s.expiration) return clock::duration::max();  // long-term keys: until reload()
    const auto lifetime = *s.expiration - s.resolved_at;
    const auto window = std::min<clock::duration>(std::chrono::minutes(5), lifetime / 2);
    const auto until = *s.expiration - window - clock::now();
    return std::max<clock::duration>(until, std::chrono::milliseconds(200));
}

void credential_cache::run(std::stop_token stop) {
    auto last_end = std::chrono::steady_clock::now() - min_spacing;
    while (!stop.stop_requested()) {
        {
            // Spacing between resolutions a stream of demands could otherwise trigger back to back.
            std::unique_lock lock(mu_);
            const auto since = std::chrono::steady_clock::now() - last_end;
            if (since < min_spacing) cv_.wait_for(lock, stop, min_spacing - since, [] { return false; });
            resolving_ = true;
            wake_now_ = false;
        }
        if (stop.stop_requested()) break;
        auto got = resolve_(cancel_);
        auto next = std::make_shared<snapshot>();
        next->resolved_at = clock::now();
        if (got) {
            next->creds = std::move(got->creds);
            next->expiration = got->expiration;
            log::info("aws credentials resolved", {{"provider", got->provider}, {"temporary", got->expiration.has_value()}});
        } else {
            const auto old = state_.load(std::memory_order_acquire);
            if (old && old->usable(next->resolved_at)) {  // stale while failing, until they expire
                next->creds = old->creds;
                next->expiration = old->expiration;
            }
            next->failed = true;
            next->error = got.message();
            log::warn("aws credentials unavailable", {{"error", got.message()}});
        }
        const auto delay = next_delay(*next);
        state_.store(std::move(next), std::memory_order_release);
        resolutions_.fetch_add(1, std::memory_order_acq_rel);
        last_end = std::chrono::steady_clock::now();
        std::unique_lock lock(mu_);
        resolving_ = false;
        cv_.notify_all();
        auto woken = [this] { return wake_now_; };
        if (delay == clock::duration::max()) cv_.wait(lock, stop, woken);
        else cv_.wait_for(lock, stop, delay, woken);
        wake_now_ = false;
    }
}

boost::asio::awaitable<void> credential_cache::await_usable(std::chrono::nanoseconds timeout) const {
    const std::uint64_t before = resolutions();
    demand();
    // The cache's thread cannot safely post to a worker's event loop (it may outlive it at
    // shutdown), so the wait polls the published state: a short tick, only while nothing is usable.
    constexpr auto tick = std::chrono::milliseconds(10);
    auto ex = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(ex);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (needs_wait() && resolutions() == before && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(tick);
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) break;  // the worker is shutting down
    }
}

result<credentials> credential_cache::get_blocking(outbound::cancel_handle& caller, std::chrono::nanoseconds timeout) const {
    const std::uint64_t before = resolutions();
    demand();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mu_);
    while (needs_wait() && resolutions() == before && !caller.cancelled() && std::chrono::steady_clock::now() < deadline)
        cv_.wait_for(lock, std::chrono::milliseconds(100));
    lock.unlock();
    return current();
}

}  // namespace iron::aws
