#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/record.hpp"

namespace iron::metrics {
namespace {

// The value of the sample line that starts with `prefix` ("name{labels} "), or -1.
double sample(const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(prefix + " ", 0) == 0) return std::stod(line.substr(prefix.size() + 1));
    }
    return -1;
}

audit::record make(const char* action, int code, double ms, std::string rejected_by = {}) {
    audit::record r;
    r.action = action;
    r.status_code = code;
    r.duration_ms = ms;
    r.rejected_by = std::move(rejected_by);
    return r;
}

// The registry is process-wide: tests compare before and after.
TEST(Metrics, RequestsByActionCodeAndTransform) {
    const std::string before = render();
    observe_request(make("allow", 200, 3));
    observe_request(make("reject", 403, 1, "allowlist"));
    observe_request(make("reject", 403, 1, "allowlist"));
    observe_request(make("error", 502, 2000));
    observe_request(make("weird", 999, 1));  // unknown action / code: bounded, still counted
    const std::string after = render();
    auto delta = [&](const std::string& p) {
        return sample(after, p) - std::max(0.0, sample(before, p));
    };
    EXPECT_EQ(delta("iron_proxy_requests_total{action=\"allow\",code=\"200\"}"), 1);
    EXPECT_EQ(delta("iron_proxy_requests_total{action=\"reject\",code=\"403\"}"), 2);
    EXPECT_EQ(delta("iron_proxy_requests_total{action=\"error\",code=\"502\"}"), 1);
    EXPECT_EQ(delta("iron_proxy_requests_total{action=\"other\",code=\"0\"}"), 1);
    EXPECT_EQ(delta("iron_proxy_requests_rejected_total{transform=\"allowlist\"}"), 2);
    EXPECT_EQ(delta("iron_proxy_audit_records_written_total"), 5);
    EXPECT_EQ(delta("iron_proxy_request_duration_seconds_count"), 5);
    EXPECT_EQ(delta("iron_proxy_request_duration_seconds_bucket{le=\"+Inf\"}"), 5);
    EXPECT_EQ(delta("iron_proxy_request_duration_seconds_bucket{le=\"0.001\"}"), 3);  // 1 ms is ≤ 0.001
    EXPECT_EQ(delta("iron_proxy_request_duration_seconds_bucket{le=\"1\"}"), 4);
    EXPECT_EQ(delta("iron_proxy_request_duration_seconds_bucket{le=\"2.5\"}"), 5);
}

TEST(Metrics, ShardsOfOtherThreadsAreSummed) {
    const double before = std::max(0.0, sample(render(), "iron_proxy_leaf_cert_cache_hits_total"));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([] {
            for (int i = 0; i < 1000; ++i) leaf_cache_hit();
        });
    for (auto& t : threads) t.join();  // the threads are gone; their counts stay
    EXPECT_EQ(sample(render(), "iron_proxy_leaf_cert_cache_hits_total") - before, 4000);
}

TEST(Metrics, ConnectionsGaugeAndCallbacks) {
    connection_opened(listener::tunnel);
    connection_opened(listener::tunnel);
    connection_closed(listener::tunnel);
    const std::string text = render();
    EXPECT_GE(sample(text, "iron_proxy_client_connections_open{listener=\"tunnel\"}"), 1);
    set_gauge("iron_proxy_test_gauge", "A test gauge.", [] { return 7.0; });
    EXPECT_EQ(sample(render(), "iron_proxy_test_gauge"), 7);
    clear_gauges();
    EXPECT_EQ(sample(render(), "iron_proxy_test_gauge"), -1);
}

TEST(Metrics, TransformLabelsAreBounded) {
    for (int i = 0; i < max_transform_labels + 5; ++i)
        observe_request(make("reject", 403, 1, "bounded-" + std::to_string(i)));
    const std::string text = render();
    EXPECT_GE(sample(text, "iron_proxy_requests_rejected_total{transform=\"other\"}"), 1);
}

TEST(Metrics, ProcessMetricsFromProc) {
    const std::string text = render();
    EXPECT_GT(sample(text, "process_resident_memory_bytes"), 0);
    EXPECT_GT(sample(text, "process_open_fds"), 0);
    EXPECT_GT(sample(text, "process_start_time_seconds"), 1.6e9);
    EXPECT_GE(sample(text, "process_cpu_seconds_total"), 0);
}

TEST(Metrics, Readiness) {
    set_ready(true);
    EXPECT_TRUE(ready());
    set_ready(false);
    EXPECT_FALSE(ready());
}

}  // namespace
}  // namespace iron::metrics

namespace iron::metrics {
namespace {

audit::trace call(const char* name, double ms, audit::trace_action action = audit::trace_action::allow) {
    audit::trace t;
    t.name = name;
    t.duration_ms = ms;
    t.action = action;
    return t;
}

TEST(Metrics, TransformCallDurationsAndErrors) {
    const std::string before = render();
    const std::string count = "iron_proxy_transform_duration_seconds_count{transform=\"unit-judge\",phase=\"request\"}";
    const std::string slow = "iron_proxy_transform_duration_seconds_bucket{transform=\"unit-judge\",phase=\"request\",le=\"2.5\"}";
    const std::string fast = "iron_proxy_transform_duration_seconds_bucket{transform=\"unit-judge\",phase=\"request\",le=\"0.5\"}";
    const std::string errors = "iron_proxy_transform_errors_total{transform=\"unit-judge\",phase=\"request\"}";
    auto was = [&](const std::string& p) { return std::max(0.0, sample(before, p)); };
    audit::record r = make("allow", 200, 1500);
    r.request_transforms = {call("allowlist", 0.01), call("unit-judge", 1200)};
    observe_request(r);
    audit::record e = make("error", 502, 5);
    e.request_transforms = {call("unit-judge", 3, audit::trace_action::error)};
    observe_request(e);
    const std::string after = render();
    EXPECT_EQ(sample(after, count), was(count) + 2);
    EXPECT_EQ(sample(after, fast), was(fast) + 1);
    EXPECT_EQ(sample(after, slow), was(slow) + 2);
    EXPECT_EQ(sample(after, errors), was(errors) + 1);
}

}  // namespace
}  // namespace iron::metrics
