#pragma once
// A secret held in a remote store (AWS Secrets Manager, SSM Parameter Store, 1Password Connect,
// Google Secret Manager), fetched the way the Go proxy does — lazily, cached, stale while failing —
// without ever doing I/O on a worker thread:
//
// * Building performs no I/O and starts no thread (so -check never contacts a store).
// * The first request that needs the value calls demand(): that starts the source's own fetch
//   thread, and the request waits for the fetch without blocking its worker
//   (secrets::await_fetched, bounded by the 30 s fetch timeout); requests arriving meanwhile wait for
//   the same fetch. Why not fetch at build: a store that is unreachable at start-up must not stop
//   the proxy, nor -check, nor a reload, and a source no request uses is never fetched (as Go).
// * After a success the value is re-fetched every `ttl` (0 = never: cached for good), by the thread,
//   so requests never wait on a refresh. A failed refresh keeps serving the last value and retries
//   after ttl/2; a failure before any success is what every request sees for `failure_ttl`
//   (default 1m) before the next attempt, so a broken store is not hammered.
// * SIGHUP / reload (reload()) asks the thread for a fetch now, if the source was ever demanded.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

#include "outbound/http_client.hpp"
#include "secrets/source.hpp"

namespace iron::secrets {

// One store's wire protocol. fetch() runs on the source's thread only; `cancel` cuts a call short
// when the source is destroyed. Errors must never contain the value (nor a token).
class store_fetcher {
public:
    virtual ~store_fetcher() = default;
    virtual result<std::string> fetch(outbound::cancel_handle& cancel) = 0;
};

class remote_source final : public source {
public:
    using duration = std::chrono::nanoseconds;
    static constexpr duration fetch_timeout = std::chrono::seconds(30);

    remote_source(std::string name, std::string json_key, duration ttl, duration failure_ttl,
                  std::unique_ptr<store_fetcher> fetcher);
    ~remote_source() override;  // cancels a fetch in flight, stops and joins the thread

    bool pending() const override;
    void demand() const override;
    void reload() override;

protected:
    result<std::string> fetch() const override;

private:
    void run(std::stop_token stop);
    duration next_delay() const;

    duration ttl_;
    duration failure_ttl_;
    std::unique_ptr<store_fetcher> fetcher_;
    mutable outbound::cancel_handle cancel_;
    mutable std::mutex mu_;
    mutable std::condition_variable_any cv_;
    mutable bool demanded_ = false;
    bool wake_now_ = false;  // reload() asked for a fetch now
    std::atomic<bool> fetched_once_{false};
    mutable std::jthread thread_;  // started by the first demand()
};

}  // namespace iron::secrets
