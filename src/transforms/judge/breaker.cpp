#include "transforms/judge/breaker.hpp"

namespace iron::transforms::judge {

void circuit_breaker::permit::settle(outcome o) {
    if (b_ == nullptr) return;
    circuit_breaker* b = b_;
    b_ = nullptr;
    b->record(probe_, o);
}

circuit_breaker::permit circuit_breaker::try_acquire() {
    std::lock_guard lock(mu_);
    switch (state_) {
        case state::closed:
            return permit(this, false);
        case state::open:
            if (now_() - opened_at_ < cooldown_) return {};
            state_ = state::half_open;
            probe_out_ = true;
            return permit(this, true);
        case state::half_open:
            if (probe_out_) return {};
            probe_out_ = true;
            return permit(this, true);
    }
    return {};
}

circuit_breaker::state circuit_breaker::current() const {
    std::lock_guard lock(mu_);
    return state_;
}

void circuit_breaker::record(bool probe, outcome o) {
    std::lock_guard lock(mu_);
    if (probe) probe_out_ = false;
    switch (o) {
        case outcome::abandoned:
            // Nothing was learnt about the model; a probe that never ran leaves the breaker
            // half-open so the next request probes.
            return;
        case outcome::success:
            failures_ = 0;
            state_ = state::closed;
            return;
        case outcome::failure:
            if (probe || state_ != state::closed) {
                state_ = state::open;
                opened_at_ = now_();
                return;
            }
            if (++failures_ >= threshold_) {
                state_ = state::open;
                opened_at_ = now_();
            }
            return;
    }
}

}  // namespace iron::transforms::judge
