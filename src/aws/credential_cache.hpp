#pragma once
// AWS credentials from a resolver (the default chain), cached and kept fresh by one background
// thread, so that:
// * building performs no I/O and starts no thread (-check contacts nothing); the first demand()
//   starts the thread;
// * resolution is single-flight: only that thread ever calls the resolver, however many requests
//   (or worker threads) want credentials at once;
// * temporary credentials are refreshed before their Expiration (when less than
//   min(5 minutes, half their lifetime) remains), so requests do not wait on a refresh; a failed
//   refresh keeps serving the old ones until they expire, retrying every few seconds; expired
//   credentials are never handed out;
// * long-term keys (no Expiration) are kept until reload() (SIGHUP) asks for a new resolution.
// Readers never block: current() loads an immutable snapshot. Secret buffers are wiped when the
// last snapshot holding them goes.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

#include <boost/asio/awaitable.hpp>

#include "aws/credential_chain.hpp"

namespace iron::aws {

class credential_cache {
public:
    using clock = std::chrono::system_clock;
    using resolver = std::function<result<timed_credentials>(outbound::cancel_handle&)>;
    static constexpr std::chrono::seconds retry_after{5};

    explicit credential_cache(resolver resolve);
    ~credential_cache();  // cancels a call in flight, stops and joins the thread
    credential_cache(const credential_cache&) = delete;
    credential_cache& operator=(const credential_cache&) = delete;

    // Credentials usable now, or why there are none (never a value in the error).
    result<credentials> current() const;
    // True when current() would fail but a resolution may still succeed (none finished yet, or the
    // cached ones expired): a request should demand() and wait rather than fail at once.
    bool needs_wait() const;
    // Start the thread (first use), or wake it when there is nothing usable to serve.
    void demand() const;
    // Re-resolve now (SIGHUP), if the cache was ever used.
    void reload();
    // How many resolutions finished so far; a waiter compares it with the count before demand().
    std::uint64_t resolutions() const { return resolutions_.load(std::memory_order_acquire); }

    // Waits, without blocking the worker, until credentials are usable or a resolution that
    // finished after the call began says why not, or `timeout` passed.
    boost::asio::awaitable<void> await_usable(std::chrono::nanoseconds timeout) const;
    // The same on a background thread (the secret stores' fetch thread); `caller` cuts it short.
    result<credentials> get_blocking(outbound::cancel_handle& caller, std::chrono::nanoseconds timeout) const;

private:
    struct snapshot;
    void run(std::stop_token stop);
    clock::duration next_delay(const snapshot& s) const;

    resolver resolve_;
    std::atomic<std::shared_ptr<const snapshot>> state_;
    std::atomic<std::uint64_t> resolutions_{0};
    mutable outbound::cancel_handle cancel_;
    mutable std::mutex mu_;
    mutable std::condition_variable_any cv_;  // wakes the thread (demand, reload) and blocking waiters
    mutable bool started_ = false;
    mutable bool wake_now_ = false;
    bool resolving_ = false;  // the thread is calling the resolver
    mutable std::jthread thread_;
};

}  // namespace iron::aws
