#include "otel/exporter.hpp"

#include <algorithm>
#include <future>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "metrics/metrics.hpp"

namespace iron::otel {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto first_backoff = std::chrono::milliseconds(100);
constexpr auto max_backoff = std::chrono::seconds(5);
constexpr auto drop_log_interval = std::chrono::minutes(1);
// A shutdown whose deadline passed still lets the loop finish the attempt in flight this long.
constexpr auto stop_grace = std::chrono::milliseconds(500);

}  // namespace

result<std::shared_ptr<exporter>> exporter::create(settings s) {
    std::shared_ptr<asio::ssl::context> tls;
    if (s.where.tls) {
        auto ctx = make_tls_context(s);
        if (!ctx) return ctx.err();
        tls = std::move(*ctx);
    }
    return std::shared_ptr<exporter>(new exporter(std::move(s), std::move(tls)));
}

exporter::exporter(settings s, std::shared_ptr<asio::ssl::context> tls)
    : s_(std::move(s)), tls_(std::move(tls)), builder_(s_.resource), queue_(s_.max_queue) {
    if (s_.proto == protocol::grpc) channel_ = make_grpc_channel(ioc_.get_executor(), s_, tls_);
    else channel_ = make_http_channel(ioc_.get_executor(), s_, tls_);
}

exporter::~exporter() { shutdown(clock::now()); }

void exporter::on_record(const audit::record& r) noexcept {
    try {
        std::string encoded = encode_log_record(r, std::chrono::system_clock::now());
        std::size_t queued = 0;
        if (queue_.push(std::move(encoded), queued) == record_queue::pushed::dropped) {
            metrics::otel_records_dropped(1);
            return;
        }
        if (queued >= s_.max_batch) wake();
    } catch (...) {  // out of memory: this record is not exported, the request is unaffected
        metrics::otel_records_dropped(1);
    }
}

void exporter::wake() noexcept {
    // One wake-up in flight at a time: a burst of records costs one post, not one per record.
    if (wake_posted_.exchange(true, std::memory_order_acq_rel)) return;
    try {
        asio::post(ioc_, [this] {
            wake_posted_.store(false, std::memory_order_release);
            wakeup_.cancel();
        });
    } catch (...) {
        wake_posted_.store(false, std::memory_order_release);
    }
}

void exporter::start() {
    if (started_.exchange(true)) return;
    asio::co_spawn(ioc_, run(), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error("otel export stopped", {{"error", ex.what()}});
        } catch (...) {
        }
    });
    thread_ = std::thread([this] { ioc_.run(); });
    log::info("otel export enabled",
              {{"endpoint", s_.where.text},
               {"protocol", s_.proto == protocol::grpc ? "grpc" : "http/protobuf"},
               {"compression", s_.gzip ? "gzip" : "none"}});
}

void exporter::shutdown(clock::time_point deadline) {
    std::lock_guard lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    if (!started_.load()) return;
    auto finished = std::make_shared<std::promise<void>>();
    std::future<void> done = finished->get_future();
    asio::post(ioc_, [this, deadline] {
        stopping_ = true;
        stop_deadline_ = deadline;
        wakeup_.cancel();
        pause_.cancel();
    });
    // The loop bounds every wait by the deadline; this only guards against a bug there.
    std::thread waiter([this, finished] {
        thread_.join();
        finished->set_value();
    });
    if (done.wait_until(deadline + stop_grace) != std::future_status::ready) ioc_.stop();
    waiter.join();
}

asio::awaitable<void> exporter::wait_for_work() {
    if (stopping_ || queue_.size() >= s_.max_batch) co_return;
    wakeup_.expires_after(s_.schedule_delay);
    co_await wakeup_.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> exporter::pause(clock::duration d) {
    pause_.expires_after(d);
    co_await pause_.async_wait(asio::as_tuple(asio::use_awaitable));
}

clock::time_point exporter::batch_deadline() const {
    const auto budget = clock::now() + s_.export_timeout;
    return stopping_ ? std::min(budget, stop_deadline_) : budget;
}

asio::awaitable<void> exporter::run() {
    while (!stopping_) {
        co_await wait_for_work();
        report_drops(false);
        if (stopping_) break;
        auto batch = queue_.take(s_.max_batch);
        if (!batch.empty()) co_await export_batch(std::move(batch));
    }
    // Shutdown: what the workers left in the queue, until the deadline.
    while (clock::now() < stop_deadline_) {
        auto batch = queue_.take(s_.max_batch);
        if (batch.empty()) break;
        co_await export_batch(std::move(batch));
    }
    const auto left = queue_.take(queue_.capacity()).size();
    if (left) count_dropped(left, "shutdown deadline reached before they were exported");
    report_drops(true);
}

asio::awaitable<void> exporter::export_batch(std::vector<std::string> records) {
    const std::size_t n = records.size();
    std::string body = builder_.build(records);
    records = {};
    if (s_.gzip) body = gzip(body);
    auto backoff = clock::duration(first_backoff);
    for (;;) {
        const auto deadline = batch_deadline();
        const auto attempt_deadline = std::min(clock::now() + s_.timeout, deadline);
        send_outcome out;
        if (clock::now() < attempt_deadline) out = co_await channel_->send(body, attempt_deadline);
        else out = send_outcome{send_outcome::kind::retry, {}, "no time left", 0};
        if (out.what == send_outcome::kind::ok) {
            metrics::otel_records_exported(n - static_cast<std::size_t>(std::clamp<long long>(out.rejected, 0, n)));
            if (out.rejected > 0) count_dropped(static_cast<std::uint64_t>(out.rejected), "the collector rejected them");
            if (failing_) log::info("otel export resumed", {{"endpoint", s_.where.text}});
            failing_ = false;
            co_return;
        }
        failing_ = true;
        last_error_ = out.detail;
        const auto wait = std::max<clock::duration>(backoff, out.retry_after);
        if (out.what == send_outcome::kind::fail || clock::now() + wait >= batch_deadline()) {
            count_dropped(n, out.detail);
            co_return;
        }
        co_await pause(wait);
        backoff = std::min<clock::duration>(backoff * 2, max_backoff);
    }
}

void exporter::count_dropped(std::uint64_t n, const std::string& why) noexcept {
    metrics::otel_records_dropped(n);
    unreported_drops_ += n;
    try {
        last_drop_reason_ = why;
    } catch (...) {
    }
}

void exporter::report_drops(bool final_report) {
    if (const auto queue_full = queue_.take_dropped()) {
        unreported_drops_ += queue_full;  // already counted in the metric by the worker
        last_drop_reason_ = "queue full: the collector is slow or down (" + (last_error_.empty() ? std::string("busy") : last_error_) + ")";
    }
    if (!unreported_drops_) return;
    const auto now = clock::now();
    if (logged_drops_ && now - last_drop_log_ < drop_log_interval && !final_report) return;
    log::warn("otel export dropped records", {{"count", unreported_drops_},
                                              {"reason", last_drop_reason_},
                                              {"endpoint", s_.where.text}});
    unreported_drops_ = 0;
    logged_drops_ = true;
    last_drop_log_ = now;
}

}  // namespace iron::otel
