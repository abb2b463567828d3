#pragma once
// The proxy's Prometheus metrics (the Go proxy has none): what is counted, and /metrics rendering.
//
// Hot path: every count goes to the calling thread's own shard (single writer: a relaxed load and
// store, no locked instruction, no shared cache line), and a scrape sums the shards. Shards live
// until the process exits, so no counter ever goes backwards.
//
// Request metrics are derived in one place only, observe_request(), which the audit sink calls
// (through request_observer, which app/ hands it) for every record it writes: every request
// (errors and early rejections included) produces exactly one audit record, so the counts and the
// audit log always agree.
//
// Labels are bounded: action (5 words), status code (0-599), listener kind, and the names of
// configured transforms (at most `max_transform_labels`, then "other"). Never hosts or paths.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "audit/observer.hpp"

namespace iron::metrics {

enum class listener { http, https, tunnel };
inline constexpr int listener_count = 3;

inline constexpr int max_transform_labels = 16;

// One audit record was written: counts the request by action and status, its duration, the
// rejecting transform, and the record itself.
void observe_request(const audit::record& r) noexcept;

// The audit sink's observer: observe_request() for every record the sink writes.
class request_observer final : public audit::record_observer {
public:
    void on_record(const audit::record& r) noexcept override { observe_request(r); }
};

void connection_opened(listener l) noexcept;
void connection_closed(listener l) noexcept;
void leaf_cache_hit() noexcept;
void leaf_cache_miss() noexcept;
void secret_fetch_error() noexcept;
void config_reload(bool ok) noexcept;
// OpenTelemetry log export (otel/): audit records delivered to the collector, and those dropped
// (queue full, collector down past the retry budget, rejected, or left at shutdown).
void otel_records_exported(std::uint64_t n) noexcept;
void otel_records_dropped(std::uint64_t n) noexcept;

// A gauge read at scrape time (e.g. the leaf cache's size). Replaces an earlier one of the same
// name; `read` must be safe to call from the metrics thread.
void set_gauge(const std::string& name, const std::string& help, std::function<double()> read);
void clear_gauges();

// /readyz: false until the proxy's listeners accept, and again once shutdown starts.
void set_ready(bool ready) noexcept;
bool ready() noexcept;

// The full exposition: iron_proxy_* families, then process_* from /proc/self.
std::string render();

}  // namespace iron::metrics
