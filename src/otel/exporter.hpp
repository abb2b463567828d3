#pragma once
// The OTLP log exporter: an audit record observer that turns every record into an OTLP LogRecord
// and ships batches to the collector from a thread of its own, never from the request path.
//
//   worker thread (on_record):  encode the LogRecord (a few µs, no I/O) → bounded queue; a full
//                               queue drops the record (counted, never waits)
//   exporter thread:            every OTEL_BLRP_SCHEDULE_DELAY, or as soon as a batch is full,
//                               take up to OTEL_BLRP_MAX_EXPORT_BATCH_SIZE records, build one
//                               ExportLogsServiceRequest (gzip if asked) and send it; retry with
//                               exponential backoff on retryable answers (HTTP 429/502/503/504,
//                               gRPC UNAVAILABLE, RESOURCE_EXHAUSTED, …) and connection failures
//                               within OTEL_BLRP_EXPORT_TIMEOUT, then drop the batch (counted)
//   shutdown (after the drain):  what is queued is exported until the deadline; the rest dropped
//
// Drops are counted in iron_proxy_otel_records_dropped_total and logged at most once a minute.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "audit/observer.hpp"
#include "core/result.hpp"
#include "otel/channel.hpp"
#include "otel/encode.hpp"
#include "otel/queue.hpp"
#include "otel/settings.hpp"

namespace iron::otel {

class exporter final : public audit::record_observer {
public:
    // Checks what can fail before start-up ends (TLS files); starts nothing.
    static result<std::shared_ptr<exporter>> create(settings s);
    ~exporter() override;
    exporter(const exporter&) = delete;
    exporter& operator=(const exporter&) = delete;

    // On the worker that emitted the record: encode and queue, or drop.
    void on_record(const audit::record& r) noexcept override;

    // Starts the exporter thread. Records queued before are exported by it.
    void start();
    // Exports what is queued until `deadline`, then stops the thread; records still queued then
    // are dropped (counted, logged). Idempotent; the destructor calls it with no time left.
    void shutdown(std::chrono::steady_clock::time_point deadline);

    const settings& config() const { return s_; }

private:
    exporter(settings s, std::shared_ptr<boost::asio::ssl::context> tls);

    boost::asio::awaitable<void> run();
    boost::asio::awaitable<void> wait_for_work();
    boost::asio::awaitable<void> export_batch(std::vector<std::string> records);
    boost::asio::awaitable<void> pause(std::chrono::steady_clock::duration d);
    std::chrono::steady_clock::time_point batch_deadline() const;
    void wake() noexcept;
    void count_dropped(std::uint64_t n, const std::string& why) noexcept;
    void report_drops(bool force);

    settings s_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
    request_builder builder_;
    record_queue queue_;

    boost::asio::io_context ioc_{1};
    boost::asio::steady_timer wakeup_{ioc_};  // the schedule delay; cancelled by a full batch
    boost::asio::steady_timer pause_{ioc_};   // retry backoff; cancelled only by shutdown
    std::unique_ptr<channel> channel_;  // after ioc_: destroyed first
    std::thread thread_;
    std::atomic<bool> wake_posted_{false};
    std::atomic<bool> started_{false};

    // Exporter thread only:
    bool stopping_ = false;
    std::chrono::steady_clock::time_point stop_deadline_{};
    std::uint64_t unreported_drops_ = 0;
    std::string last_drop_reason_;
    std::chrono::steady_clock::time_point last_drop_log_{};
    bool logged_drops_ = false;
    bool failing_ = false;    // the last export failed (the next success is logged)
    std::string last_error_;  // why it failed

    std::mutex shutdown_mu_;
    bool shut_down_ = false;
};

}  // namespace iron::otel
