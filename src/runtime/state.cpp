#include "runtime/state.hpp"

namespace iron::runtime {

namespace {
std::atomic<std::uint64_t> next_slot_id{1};

// This thread's reference to one slot's policy, as of one generation.
struct cached_policy {
    std::uint64_t slot = 0;
    std::uint64_t generation = 0;
    std::shared_ptr<const request_policy> local;  // aliasing: a control block of this thread's own
};
thread_local cached_policy cache;
}  // namespace

policy_slot::policy_slot(std::shared_ptr<const request_policy> p)
    : id_(next_slot_id.fetch_add(1, std::memory_order_relaxed)), current_(std::move(p)) {}

std::shared_ptr<const request_policy> policy_slot::get() const {
    const std::uint64_t gen = generation_.load(std::memory_order_acquire);
    if (cache.slot != id_ || cache.generation != gen || !cache.local) {
        auto holder = std::make_shared<std::shared_ptr<const request_policy>>(current_.load(std::memory_order_acquire));
        const request_policy* raw = holder->get();
        cache.local = std::shared_ptr<const request_policy>(std::move(holder), raw);
        cache.slot = id_;
        cache.generation = gen;
    }
    return cache.local;
}

void policy_slot::set(std::shared_ptr<const request_policy> p) {
    current_.store(std::move(p), std::memory_order_release);
    // After the store: a thread that sees the new generation also sees the new policy.
    generation_.fetch_add(1, std::memory_order_release);
}

}  // namespace iron::runtime
