#include "secrets/remote_source.hpp"

namespace iron::secrets {

remote_source::remote_source(std::string name, std::string json_key, duration ttl, duration failure_ttl,
                             std::unique_ptr<store_fetcher> fetcher)
    : source(std::move(name), std::move(json_key)),
      ttl_(ttl),
      failure_ttl_(failure_ttl > duration(0) ? failure_ttl : std::chrono::minutes(1)),
      fetcher_(std::move(fetcher)) {}

remote_source::~remote_source() {
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

bool remote_source::pending() const { return !fetched_once_.load(std::memory_order_acquire); }

void remote_source::demand() const {
    std::lock_guard lock(mu_);
    if (demanded_ || cancel_.cancelled()) return;
    demanded_ = true;
    auto* self = const_cast<remote_source*>(this);  // the thread is the source's own writer
    thread_ = std::jthread([self](std::stop_token st) { self->run(std::move(st)); });
}

void remote_source::reload() {
    std::lock_guard lock(mu_);
    if (!demanded_) return;  // still lazy: the first request will fetch
    wake_now_ = true;
    cv_.notify_all();
}

result<std::string> remote_source::fetch() const { return fetcher_->fetch(cancel_); }

remote_source::duration remote_source::next_delay() const {
    if (last_refresh_failed()) {
        if (!has_value()) return failure_ttl_;
        return ttl_ > duration(0) ? ttl_ / 2 : failure_ttl_;
    }
    return ttl_;  // 0 = cached for good
}

void remote_source::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        refresh();
        fetched_once_.store(true, std::memory_order_release);
        const duration delay = next_delay();
        std::unique_lock lock(mu_);
        auto woken = [this] { return wake_now_; };
        if (delay > duration(0)) cv_.wait_for(lock, stop, delay, woken);
        else cv_.wait(lock, stop, woken);
        wake_now_ = false;
    }
}

}  // namespace iron::secrets
