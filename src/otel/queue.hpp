#pragma once
// The bounded queue between the proxy's workers (which add one encoded LogRecord per audit
// record) and the exporter thread (which takes batches). Adding never waits for the exporter: a
// full queue drops the record and counts it, so a slow or absent collector costs a request no
// more than a short lock.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace iron::otel {

class record_queue {
public:
    explicit record_queue(std::size_t capacity) : capacity_(capacity) {}

    enum class pushed { queued, dropped };
    // Queues `record` unless the queue is full. `size_after` is the queue's length afterwards.
    pushed push(std::string record, std::size_t& size_after);
    // Up to `max` records, oldest first.
    std::vector<std::string> take(std::size_t max);
    std::size_t size() const;
    std::size_t capacity() const { return capacity_; }

    // Records dropped because the queue was full, since the last call.
    std::uint64_t take_dropped() noexcept { return dropped_.exchange(0, std::memory_order_relaxed); }

private:
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::deque<std::string> items_;
    std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace iron::otel
