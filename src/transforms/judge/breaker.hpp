#pragma once
// The judge's circuit breaker: after `consecutive_failures` failed calls in a row it opens, and
// for `cooldown` every request gets the fallback without calling the model. Then exactly one
// request probes (half-open): success closes the breaker, failure opens it for another cooldown;
// requests arriving while the probe is out get the fallback. Thread-safe (one per judge instance,
// shared by all workers).
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>

namespace iron::transforms::judge {

class circuit_breaker {
public:
    using clock = std::chrono::steady_clock;
    enum class state { closed, open, half_open };
    enum class outcome { success, failure, abandoned };  // abandoned: the call never happened

    circuit_breaker(std::size_t threshold, clock::duration cooldown, std::function<clock::time_point()> now = clock::now)
        : threshold_(threshold), cooldown_(cooldown), now_(std::move(now)) {}

    // A permit to call the model, or none (breaker open, or the half-open probe is out). Settle
    // every permit exactly once; a permit destroyed unsettled counts as abandoned.
    class permit {
    public:
        permit() = default;
        permit(permit&& o) noexcept : b_(o.b_), probe_(o.probe_) { o.b_ = nullptr; }
        permit& operator=(permit&&) = delete;
        ~permit() { settle(outcome::abandoned); }
        explicit operator bool() const { return b_ != nullptr; }
        void settle(outcome o);

    private:
        friend class circuit_breaker;
        permit(circuit_breaker* b, bool probe) : b_(b), probe_(probe) {}
        circuit_breaker* b_ = nullptr;
        bool probe_ = false;
    };

    permit try_acquire();
    state current() const;

private:
    void record(bool probe, outcome o);

    const std::size_t threshold_;
    const clock::duration cooldown_;
    const std::function<clock::time_point()> now_;
    mutable std::mutex mu_;
    state state_ = state::closed;
    std::size_t failures_ = 0;
    clock::time_point opened_at_{};
    bool probe_out_ = false;
};

}  // namespace iron::transforms::judge
