#include "metrics/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "audit/record.hpp"
#include "metrics/exposition.hpp"

namespace iron::metrics {

namespace {

constexpr std::array<const char*, 6> action_names = {"allow", "reject", "stub", "error", "client_cancel", "other"};
constexpr int action_count = static_cast<int>(action_names.size());
constexpr int code_count = 600;  // status codes 0-599; anything else is counted as 0
constexpr std::array<double, 15> duration_bounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                    1,     2.5,   5,    10,    30,    60,  120};
// Transform calls: from a few microseconds (a header check) to an LLM's seconds.
constexpr std::array<double, 14> transform_bounds = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,    0.25,  0.5,    1,     2.5,  10};
constexpr std::array<const char*, listener_count> listener_names = {"http", "https", "tunnel"};

// Written by one thread only (the shard's owner), read by the scraper: a relaxed load + store
// is enough and costs no locked instruction.
struct counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

struct alignas(64) shard {
    counter requests[action_count][code_count];
    counter duration_buckets[duration_bounds.size() + 1];
    counter duration_sum_us;
    // Rejecting transforms by name: a name is written once, then published by `rejected_used`.
    counter rejected[max_transform_labels + 1];  // the last slot is "other"
    std::string rejected_names[max_transform_labels];
    std::atomic<int> rejected_used{0};
    // Per transform (by trace name, first come first served, then "other"): call durations and
    // calls that ended in an error verdict. Names are published like the rejected ones.
    struct transform_calls {
        counter buckets[transform_bounds.size() + 1];
        counter sum_us;
        counter errors;
    };
    transform_calls transforms[2][max_transform_labels + 1];  // [0] request phase, [1] response
    std::string transform_names[max_transform_labels];
    std::atomic<int> transforms_used{0};
    counter audit_written, leaf_hits, leaf_misses, secret_errors, reloads_ok, reloads_failed;
    counter otel_exported, otel_dropped;
    counter opened[listener_count], closed[listener_count];
};

// Counts of threads whose own shard could not be allocated: still atomic (only an increment
// racing another thread's may be lost), so counting never throws. Always part of a scrape.
shard fallback_shard;

struct registry {
    std::mutex mu;
    std::vector<std::unique_ptr<shard>> shards;  // never shrinks: counts outlive their threads
    std::map<std::string, std::pair<std::string, std::function<double()>>> gauges;
};

registry& reg() {
    static registry* r = new registry;  // never destroyed: threads may count during exit
    return *r;
}

shard& my_shard() noexcept {
    thread_local shard* mine = nullptr;
    if (mine) return *mine;
    try {
        auto s = std::make_unique<shard>();
        std::lock_guard lock(reg().mu);
        reg().shards.push_back(std::move(s));
        mine = reg().shards.back().get();
    } catch (...) {
        return fallback_shard;
    }
    return *mine;
}

std::atomic<bool> ready_flag{false};

int action_index(std::string_view a) {
    for (int i = 0; i < action_count - 1; ++i)
        if (a == action_names[i]) return i;
    return action_count - 1;
}

void count_rejection(shard& s, const std::string& by) {
    // The fallback shard has several writers: it never writes a name, only "other".
    if (&s == &fallback_shard) return s.rejected[max_transform_labels].add();
    const int used = s.rejected_used.load(std::memory_order_relaxed);  // only this thread writes it
    for (int i = 0; i < used; ++i) {
        if (s.rejected_names[i] == by) return s.rejected[i].add();
    }
    if (used == max_transform_labels) return s.rejected[max_transform_labels].add();
    s.rejected_names[used] = by;
    s.rejected[used].add();
    s.rejected_used.store(used + 1, std::memory_order_release);
}

// The slot for transform `name` in this shard (the last one is "other").
int transform_slot(shard& s, const std::string& name) {
    if (&s == &fallback_shard) return max_transform_labels;
    const int used = s.transforms_used.load(std::memory_order_relaxed);  // only this thread writes it
    for (int i = 0; i < used; ++i)
        if (s.transform_names[i] == name) return i;
    if (used == max_transform_labels) return max_transform_labels;
    s.transform_names[used] = name;
    s.transforms_used.store(used + 1, std::memory_order_release);
    return used;
}

void count_traces(shard& s, const std::vector<audit::trace>& traces, int phase) {
    for (const auto& tr : traces) {
        auto& calls = s.transforms[phase][transform_slot(s, tr.name)];
        const double seconds = tr.duration_ms > 0 ? tr.duration_ms / 1000.0 : 0;
        std::size_t b = 0;
        while (b < transform_bounds.size() && seconds > transform_bounds[b]) ++b;
        calls.buckets[b].add();
        calls.sum_us.add(static_cast<std::uint64_t>(seconds * 1e6));
        // A failure a fail-open transform let pass (trace action allow, with an error) counts too.
        if (tr.action == audit::trace_action::error || !tr.error.empty()) calls.errors.add();
    }
}

// --- scrape ---------------------------------------------------------------------------------

// Sums of every shard, taken under the registry lock (no shard appears or moves meanwhile).
struct totals {
    std::uint64_t requests[action_count][code_count] = {};
    histogram_snapshot duration;
    std::map<std::string, std::uint64_t> rejected;
    // Keyed by (phase, transform).
    std::map<std::pair<std::string, std::string>, histogram_snapshot> transform_durations;
    std::map<std::pair<std::string, std::string>, std::uint64_t> transform_errors;
    std::uint64_t audit_written = 0, leaf_hits = 0, leaf_misses = 0, secret_errors = 0;
    std::uint64_t reloads_ok = 0, reloads_failed = 0;
    std::uint64_t otel_exported = 0, otel_dropped = 0;
    std::uint64_t opened[listener_count] = {}, closed[listener_count] = {};
};

void add_transform_calls(totals& t, const shard::transform_calls& calls, const char* phase, const std::string& name) {
    std::uint64_t n = 0;
    for (const auto& b : calls.buckets) n += b.get();
    if (n == 0) return;
    const auto key = std::make_pair(std::string(phase), name);
    auto [it, fresh] = t.transform_durations.try_emplace(key);
    if (fresh) {
        it->second.bounds.assign(transform_bounds.begin(), transform_bounds.end());
        it->second.counts.assign(transform_bounds.size() + 1, 0);
    }
    for (std::size_t b = 0; b < it->second.counts.size(); ++b) it->second.counts[b] += calls.buckets[b].get();
    it->second.sum += static_cast<double>(calls.sum_us.get()) / 1e6;
    t.transform_errors[key] += calls.errors.get();
}

void add_transforms(totals& t, const shard& s) {
    const int used = s.transforms_used.load(std::memory_order_acquire);
    for (int phase = 0; phase < 2; ++phase) {
        for (int i = 0; i <= max_transform_labels; ++i) {
            if (i < max_transform_labels && i >= used) continue;
            add_transform_calls(t, s.transforms[phase][i], phase == 0 ? "request" : "response",
                                i < max_transform_labels ? s.transform_names[i] : std::string("other"));
        }
    }
}

void add_shard(totals& t, const shard& s) {

    for (int a = 0; a < action_count; ++a)
        for (int c = 0; c < code_count; ++c) t.requests[a][c] += s.requests[a][c].get();
    for (std::size_t b = 0; b < t.duration.counts.size(); ++b) t.duration.counts[b] += s.duration_buckets[b].get();
    t.duration.sum += static_cast<double>(s.duration_sum_us.get()) / 1e6;
    const int used = s.rejected_used.load(std::memory_order_acquire);
    for (int i = 0; i < used; ++i) t.rejected[s.rejected_names[i]] += s.rejected[i].get();
    if (auto other = s.rejected[max_transform_labels].get()) t.rejected["other"] += other;
    add_transforms(t, s);
    t.audit_written += s.audit_written.get();
    t.leaf_hits += s.leaf_hits.get();
    t.leaf_misses += s.leaf_misses.get();
    t.secret_errors += s.secret_errors.get();
    t.reloads_ok += s.reloads_ok.get();
    t.reloads_failed += s.reloads_failed.get();
    t.otel_exported += s.otel_exported.get();
    t.otel_dropped += s.otel_dropped.get();
    // closed before opened: a connection that opens meanwhile can only make the gauge larger.
    for (int l = 0; l < listener_count; ++l) t.closed[l] += s.closed[l].get();
    for (int l = 0; l < listener_count; ++l) t.opened[l] += s.opened[l].get();
}

std::unique_ptr<totals> collect() {
    auto t = std::make_unique<totals>();
    t->duration.bounds.assign(duration_bounds.begin(), duration_bounds.end());
    t->duration.counts.assign(duration_bounds.size() + 1, 0);
    std::lock_guard lock(reg().mu);
    for (const auto& s : reg().shards) add_shard(*t, *s);
    add_shard(*t, fallback_shard);
    return t;
}

void write_requests(exposition_writer& w, const totals& t) {
    w.family("iron_proxy_requests_total", "Requests handled (one per audit record), by action and status code.",
             "counter");
    for (int a = 0; a < action_count; ++a) {
        for (int c = 0; c < code_count; ++c) {
            if (!t.requests[a][c]) continue;
            const std::string code = std::to_string(c);
            w.sample("iron_proxy_requests_total", {{"action", action_names[a]}, {"code", code}},
                     static_cast<double>(t.requests[a][c]));
        }
    }
    w.family("iron_proxy_requests_rejected_total", "Requests rejected, by the transform that rejected them.",
             "counter");
    for (const auto& [name, n] : t.rejected)
        w.sample("iron_proxy_requests_rejected_total", {{"transform", name}}, static_cast<double>(n));
    w.family("iron_proxy_request_duration_seconds",
             "Time from the first byte of a request to its audit record (whole tunnel for passthrough).",
             "histogram");
    w.histogram("iron_proxy_request_duration_seconds", t.duration);
    w.family("iron_proxy_transform_duration_seconds",
             "Time each transform took (an LLM judge's call included), by transform and phase (request, response).",
             "histogram");
    for (const auto& [key, h] : t.transform_durations)
        w.histogram("iron_proxy_transform_duration_seconds", h, {{"transform", key.second}, {"phase", key.first}});
    w.family("iron_proxy_transform_errors_total", "Transform calls that ended in an error (a 502, or let pass by a fail-open mode), by transform and phase.",
             "counter");
    for (const auto& [key, n] : t.transform_errors)
        w.sample("iron_proxy_transform_errors_total", {{"transform", key.second}, {"phase", key.first}},
                 static_cast<double>(n));
}

void write_counters(exposition_writer& w, const totals& t) {
    auto one = [&w](const char* name, const char* help, std::uint64_t v) {
        w.family(name, help, "counter");
        w.sample(name, {}, static_cast<double>(v));
    };
    one("iron_proxy_audit_records_written_total", "Audit records handed to the audit sink.", t.audit_written);
    one("iron_proxy_leaf_cert_cache_hits_total", "MITM leaf certificates served from the cache.", t.leaf_hits);
    one("iron_proxy_leaf_cert_cache_misses_total", "MITM leaf certificates minted (absent or due for refresh).",
        t.leaf_misses);
    one("iron_proxy_secret_fetch_errors_total", "Secret source refreshes that failed.", t.secret_errors);
    one("iron_proxy_otel_records_exported_total", "Audit records the OTLP collector accepted.", t.otel_exported);
    one("iron_proxy_otel_records_dropped_total",
        "Audit records not exported to the OTLP collector (queue full, collector down, shutdown).", t.otel_dropped);
    w.family("iron_proxy_config_reloads_total", "Configuration reloads through the management API, by result.",
             "counter");
    w.sample("iron_proxy_config_reloads_total", {{"result", "ok"}}, static_cast<double>(t.reloads_ok));
    w.sample("iron_proxy_config_reloads_total", {{"result", "error"}}, static_cast<double>(t.reloads_failed));
    w.family("iron_proxy_client_connections_total", "Client connections accepted, by listener.", "counter");
    for (int l = 0; l < listener_count; ++l)
        w.sample("iron_proxy_client_connections_total", {{"listener", listener_names[l]}},
                 static_cast<double>(t.opened[l]));
    w.family("iron_proxy_client_connections_open", "Client connections open now, by listener.", "gauge");
    for (int l = 0; l < listener_count; ++l) {
        const std::uint64_t open = t.opened[l] >= t.closed[l] ? t.opened[l] - t.closed[l] : 0;
        w.sample("iron_proxy_client_connections_open", {{"listener", listener_names[l]}}, static_cast<double>(open));
    }
}

void write_gauges(exposition_writer& w) {
    std::vector<std::pair<std::string, std::pair<std::string, std::function<double()>>>> copy;
    {
        std::lock_guard lock(reg().mu);
        copy.assign(reg().gauges.begin(), reg().gauges.end());
    }
    for (const auto& [name, g] : copy) {  // read outside the lock: a gauge may take its own locks
        w.family(name, g.first, "gauge");
        w.sample(name, {}, g.second());
    }
}

// --- process_* (the names and meanings of the Prometheus client libraries) ---------------------

struct proc_stat {
    double cpu_seconds = 0, start_time = 0, virtual_bytes = 0, resident_bytes = 0;
    bool ok = false;
};

double boot_time_seconds() {
    std::ifstream in("/proc/stat");
    std::string key;
    double value = 0;
    while (in >> key) {
        if (key == "btime" && in >> value) return value;
        in.ignore(1 << 20, '\n');
    }
    return 0;
}

proc_stat read_proc_stat() {
    proc_stat out;
    std::ifstream in("/proc/self/stat");
    std::string line;
    if (!std::getline(in, line)) return out;
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) return out;
    std::istringstream rest(line.substr(close + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string tok; rest >> tok;) f.push_back(tok);
    if (f.size() < 22) return out;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    out.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
    out.start_time = boot_time_seconds() + std::stod(f[19]) / ticks;  // starttime
    out.virtual_bytes = std::stod(f[20]);
    out.resident_bytes = std::stod(f[21]) * page;
    out.ok = true;
    return out;
}

double open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return 0;
    double n = 0;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n - 1;  // the directory handle itself
}

void write_process(exposition_writer& w) {
    proc_stat st;
    try {
        st = read_proc_stat();
    } catch (...) {  // a malformed /proc line (stod) must not fail the scrape
    }
    auto gauge = [&w](const char* name, const char* help, const char* type, double v) {
        w.family(name, help, type);
        w.sample(name, {}, v);
    };
    if (st.ok) {
        gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", st.cpu_seconds);
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", st.resident_bytes);
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", st.virtual_bytes);
        gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge",
              st.start_time);
    }
    gauge("process_open_fds", "Number of open file descriptors.", "gauge", open_fds());
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0)
        gauge("process_max_fds", "Maximum number of open file descriptors.", "gauge",
              lim.rlim_cur == RLIM_INFINITY ? 0 : static_cast<double>(lim.rlim_cur));
}

}  // namespace

void observe_request(const audit::record& r) noexcept {
    shard& s = my_shard();
    const int code = r.status_code >= 0 && r.status_code < code_count ? r.status_code : 0;
    s.requests[action_index(r.action)][code].add();
    const double seconds = r.duration_ms > 0 ? r.duration_ms / 1000.0 : 0;
    std::size_t b = 0;
    while (b < duration_bounds.size() && seconds > duration_bounds[b]) ++b;
    s.duration_buckets[b].add();
    s.duration_sum_us.add(static_cast<std::uint64_t>(seconds * 1e6));
    if (!r.rejected_by.empty()) {
        try {
            count_rejection(s, r.rejected_by);
        } catch (...) {  // the first rejection by a name copies it; out of memory costs one count
        }
    }
    try {
        count_traces(s, r.request_transforms, 0);
        count_traces(s, r.response_transforms, 1);
    } catch (...) {  // a name's first copy; out of memory costs these counts, never the request
    }
    s.audit_written.add();
}

void connection_opened(listener l) noexcept { my_shard().opened[static_cast<int>(l)].add(); }
void connection_closed(listener l) noexcept { my_shard().closed[static_cast<int>(l)].add(); }
void leaf_cache_hit() noexcept { my_shard().leaf_hits.add(); }
void leaf_cache_miss() noexcept { my_shard().leaf_misses.add(); }
void secret_fetch_error() noexcept { my_shard().secret_errors.add(); }
void config_reload(bool ok) noexcept { (ok ? my_shard().reloads_ok : my_shard().reloads_failed).add(); }
void otel_records_exported(std::uint64_t n) noexcept { my_shard().otel_exported.add(n); }
void otel_records_dropped(std::uint64_t n) noexcept { my_shard().otel_dropped.add(n); }

void set_gauge(const std::string& name, const std::string& help, std::function<double()> read) {
    std::lock_guard lock(reg().mu);
    reg().gauges[name] = {help, std::move(read)};
}

void clear_gauges() {
    std::lock_guard lock(reg().mu);
    reg().gauges.clear();
}

void set_ready(bool r) noexcept { ready_flag.store(r, std::memory_order_relaxed); }
bool ready() noexcept { return ready_flag.load(std::memory_order_relaxed); }

std::string render() {
    auto t = collect();
    exposition_writer w;
    w.family("iron_proxy_build_info", "Build of the running proxy.", "gauge");
    w.sample("iron_proxy_build_info", {{"version", IRON_VERSION}}, 1);
    write_requests(w, *t);
    write_counters(w, *t);
    write_gauges(w);
    write_process(w);
    return w.take();
}

}  // namespace iron::metrics
