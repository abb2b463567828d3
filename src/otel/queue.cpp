#include "otel/queue.hpp"

#include <algorithm>

namespace iron::otel {

record_queue::pushed record_queue::push(std::string record, std::size_t& size_after) {
    {
        std::lock_guard lock(mu_);
        if (items_.size() < capacity_) {
            items_.push_back(std::move(record));
            size_after = items_.size();
            return pushed::queued;
        }
        size_after = items_.size();
    }
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return pushed::dropped;  // `record` is freed outside the lock
}

std::vector<std::string> record_queue::take(std::size_t max) {
    std::vector<std::string> out;
    std::lock_guard lock(mu_);
    const std::size_t n = std::min(max, items_.size());
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(std::move(items_.front()));
        items_.pop_front();
    }
    return out;
}

std::size_t record_queue::size() const {
    std::lock_guard lock(mu_);
    return items_.size();
}

}  // namespace iron::otel
