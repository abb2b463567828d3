// Google Benchmark micro suite for the hot pure functions on iron-proxy's request path
// (issue 6, deliverable 2). Build with -DIRON_BUILD_BENCH=ON (target micro_bench), then
//   build/bench/micro_bench --benchmark_min_time=0.2
//
//   BM_HostGlob_*        core::match_host_glob against a 1,000-entry allowlist (linear scan, as the
//                        allowlist did it before host_glob_set: kept as the baseline), for a hit near
//                        the end, a wildcard hit and a miss.
//   BM_HostGlobSet_*     the same three hosts against core::host_glob_set built from those patterns.
//   BM_Allowlist_*       the same through the real transform: transforms::allowlist built from a
//                        YAML config of 1,000 domains, on_request over a pipeline::exchange.
//   BM_AuditSerialize_*  audit::serialize of a typical allowed MITM record and of a tunnel record
//                        with transform traces.
//   BM_LeafMint_*        tls::leaf_cache::get: cache miss (a fresh name each iteration, ECDSA P-256
//                        sign) and cache hit (one name).
//   BM_SecretScan_*      transforms::scan::swap_in_header_value over a 4 KiB header block, search
//                        only (no placeholder present: the common case), and with one hit.
//   BM_Redact_*          core::stream_replacer (secrets redact_responses) over a 1 MiB JSON-ish
//                        body (English-like text: the secrets' first bytes are common) in 32 KiB
//                        relay pieces, with two secrets: no hit, and one hit per KiB.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "audit/record.hpp"
#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"
#include "core/host_glob_set.hpp"
#include "core/stream_replace.hpp"
#include "pipeline/exchange.hpp"
#include "tls/ca.hpp"
#include "tls/leaf_cache.hpp"
#include "transforms/allowlist.hpp"
#include "transforms/secrets_scan.hpp"

namespace {

using namespace iron;

// 1,000 patterns shaped like real allowlists: mostly exact names, every fourth a "*.domain".
std::vector<std::string> allowlist_patterns() {
    std::vector<std::string> v;
    v.reserve(1000);
    for (int i = 0; i < 1000; ++i) {
        std::string base = "svc" + std::to_string(i) + ".region" + std::to_string(i % 7) + ".example" +
                           std::to_string(i % 13) + ".com";
        v.push_back(i % 4 == 3 ? "*." + base : "api." + base);
    }
    return v;
}

const std::vector<std::string>& patterns() {
    static const auto p = allowlist_patterns();
    return p;
}

bool scan(const std::vector<std::string>& pats, std::string_view host) {
    for (const auto& p : pats)
        if (core::match_host_glob(p, host)) return true;
    return false;
}

void BM_HostGlob_ExactHitLast(benchmark::State& st) {
    const auto& pats = patterns();
    const std::string host = "api.svc998.region4.example10.com";  // entry 998 (exact)
    for (auto _ : st) benchmark::DoNotOptimize(scan(pats, host));
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_HostGlob_ExactHitLast);

void BM_HostGlob_WildcardHitLast(benchmark::State& st) {
    const auto& pats = patterns();
    const std::string host = "deep.sub.svc999.region5.example11.com";  // entry 999 (*.)
    for (auto _ : st) benchmark::DoNotOptimize(scan(pats, host));
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_HostGlob_WildcardHitLast);

void BM_HostGlob_Miss(benchmark::State& st) {
    const auto& pats = patterns();
    const std::string host = "evil.attacker.net";
    for (auto _ : st) benchmark::DoNotOptimize(scan(pats, host));
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_HostGlob_Miss);

void host_glob_set_case(benchmark::State& st, std::string_view host) {
    const core::host_glob_set set(patterns());
    for (auto _ : st) benchmark::DoNotOptimize(set.matches_any(host));
    st.SetItemsProcessed(st.iterations());
}
void BM_HostGlobSet_ExactHitLast(benchmark::State& st) { host_glob_set_case(st, "api.svc998.region4.example10.com"); }
void BM_HostGlobSet_WildcardHitLast(benchmark::State& st) {
    host_glob_set_case(st, "deep.sub.svc999.region5.example11.com");
}
void BM_HostGlobSet_Miss(benchmark::State& st) { host_glob_set_case(st, "evil.attacker.net"); }
BENCHMARK(BM_HostGlobSet_ExactHitLast);
BENCHMARK(BM_HostGlobSet_WildcardHitLast);
BENCHMARK(BM_HostGlobSet_Miss);

std::unique_ptr<transforms::allowlist> make_allowlist() {
    YAML::Node cfg;
    for (const auto& p : patterns()) cfg["domains"].push_back(p);
    auto r = transforms::allowlist::from_config(cfg, config::yaml_ctx{"bench.yaml", "transforms[0].config"});
    if (!r) {
        std::fprintf(stderr, "allowlist config rejected\n");
        std::abort();
    }
    return std::move(*r);
}

void allowlist_case(benchmark::State& st, const char* host) {
    auto al = make_allowlist();
    pipeline::exchange ex;
    ex.method = "GET";
    ex.host = host;
    ex.policy_host = host;
    ex.path = "/v1/items";
    ex.raw_path = "/v1/items";
    ex.sni = host;
    for (auto _ : st) {
        auto v = al->on_request(ex);
        benchmark::DoNotOptimize(v);
    }
    st.SetItemsProcessed(st.iterations());
}
void BM_Allowlist_HitLast(benchmark::State& st) { allowlist_case(st, "api.svc998.region4.example10.com"); }
void BM_Allowlist_Miss(benchmark::State& st) { allowlist_case(st, "evil.attacker.net"); }
BENCHMARK(BM_Allowlist_HitLast);
BENCHMARK(BM_Allowlist_Miss);

audit::record typical_record(bool with_tunnel) {
    audit::record r;
    r.host = "api.github.com:443";
    r.method = "GET";
    r.path = "/repos/ironsh/iron-proxy/contents/README.md";
    r.remote_addr = "127.0.0.1:51234";
    r.sni = "api.github.com";
    r.status_code = 200;
    r.duration_ms = 12.345;
    audit::trace t{"allowlist", audit::trace_action::allow, 0.002, {}, {}};
    r.request_transforms.push_back(t);
    r.response_transforms.push_back(t);
    if (with_tunnel) {
        r.tunnel = audit::tunnel_info{"api.github.com:443", {t}};
        audit::trace s{"secrets", audit::trace_action::allow, 0.011, {}, {}};
        s.annotations["swapped"] = boost::json::array{"OPENAI_API_KEY"};
        s.annotations["where"] = "header:Authorization";
        r.request_transforms.push_back(s);
    }
    return r;
}

void BM_AuditSerialize_Simple(benchmark::State& st) {
    auto r = typical_record(false);
    std::size_t bytes = 0;
    for (auto _ : st) {
        auto s = audit::serialize(r);
        bytes += s.size();
        benchmark::DoNotOptimize(s);
    }
    st.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_AuditSerialize_Simple);

void BM_AuditSerialize_TunnelWithTraces(benchmark::State& st) {
    auto r = typical_record(true);
    std::size_t bytes = 0;
    for (auto _ : st) {
        auto s = audit::serialize(r);
        bytes += s.size();
        benchmark::DoNotOptimize(s);
    }
    st.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_AuditSerialize_TunnelWithTraces);

// One CA for the whole process, generated into a temp dir with the proxy's own generate_ca.
std::shared_ptr<const tls::certificate_authority> bench_ca() {
    static std::shared_ptr<const tls::certificate_authority> ca = [] {
        char tmpl[] = "/tmp/iron-micro-XXXXXX";
        const char* dir = mkdtemp(tmpl);
        if (!dir) std::abort();
        tls::generate_ca_options o;
        o.outdir = dir;
        o.name = "micro bench CA";
        auto g = tls::generate_ca(o);
        if (!g) std::abort();
        auto loaded = tls::certificate_authority::load(g->cert_path, g->key_path);
        if (!loaded) std::abort();
        std::filesystem::remove_all(dir);
        return *loaded;
    }();
    return ca;
}

void BM_LeafMint_Miss(benchmark::State& st) {
    // Capacity above the iteration count would grow without bound; a small LRU still misses on
    // every fresh name, and eviction is part of the real miss path.
    tls::leaf_cache cache(bench_ca(), 1000, std::chrono::hours(72));
    std::size_t i = 0;
    for (auto _ : st) {
        auto leaf = cache.get("host" + std::to_string(i++) + ".example.com");
        if (!leaf) {
            st.SkipWithError("mint failed");
            break;
        }
        benchmark::DoNotOptimize(leaf);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_LeafMint_Miss)->Unit(benchmark::kMicrosecond);

void BM_LeafMint_Hit(benchmark::State& st) {
    tls::leaf_cache cache(bench_ca(), 1000, std::chrono::hours(72));
    if (!cache.get("api.github.com")) {
        st.SkipWithError("mint failed");
        return;
    }
    for (auto _ : st) {
        auto leaf = cache.get("api.github.com");
        benchmark::DoNotOptimize(leaf);
    }
    st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_LeafMint_Hit);

struct header {
    std::string name, value;
    bool authorization;
};

// About 4 KiB of request headers: the usual suspects plus a big cookie and a bearer token.
std::vector<header> header_block(bool with_placeholder) {
    std::vector<header> h = {
        {"Host", "api.openai.com", false},
        {"User-Agent", "python-requests/2.31.0 (agent; sandbox)", false},
        {"Accept", "application/json, text/plain, */*", false},
        {"Accept-Encoding", "gzip, deflate, br", false},
        {"Accept-Language", "en-US,en;q=0.9", false},
        {"Content-Type", "application/json", false},
        {"Authorization",
         with_placeholder ? "Bearer iron_proxy_placeholder_OPENAI_API_KEY" : "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
         true},
        {"X-Request-Id", "7f1c2d9e-4a8b-4e21-9f0b-0c7e5d8a6b31", false},
        {"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
    };
    std::size_t used = 0;
    for (const auto& e : h) used += e.name.size() + e.value.size() + 4;  // "Name: value\r\n"
    std::string cookie;
    for (int i = 0; used + 10 + cookie.size() < 4096; ++i)
        cookie += "k" + std::to_string(i) + "=v" + std::string(24, static_cast<char>('a' + i % 26)) + "; ";
    cookie.resize(4096 - used - 10);  // "Cookie: " + CRLF: the whole block is exactly 4 KiB
    h.push_back({"Cookie", cookie, false});
    return h;
}

void secret_scan_case(benchmark::State& st, bool with_placeholder) {
    const std::string token = "iron_proxy_placeholder_OPENAI_API_KEY";
    auto block = header_block(with_placeholder);
    std::size_t bytes = 0;
    for (const auto& h : block) bytes += h.name.size() + h.value.size() + 4;
    for (auto _ : st) {
        bool found = false;
        for (auto& h : block) found |= transforms::scan::swap_in_header_value(h.authorization, h.value, token, nullptr);
        benchmark::DoNotOptimize(found);
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * bytes));
    st.counters["block_bytes"] = static_cast<double>(bytes);
}
void BM_SecretScan_4KiB_NoHit(benchmark::State& st) { secret_scan_case(st, false); }
void BM_SecretScan_4KiB_Hit(benchmark::State& st) { secret_scan_case(st, true); }
BENCHMARK(BM_SecretScan_4KiB_NoHit);
BENCHMARK(BM_SecretScan_4KiB_Hit);

// Response redaction's cost per body byte, when it is on (off, the relays skip it entirely).
void redact_case(benchmark::State& st, bool hits) {
    auto set = std::make_shared<const core::replacement_set>(std::vector<core::replacement_set::rule>{
        {"sk-live-REAL-4b1d9e77c2", "IRONSH_PH_redact-0f3a"}, {"ghp_REALtokenvalue0123456789", "proxy-github"}});
    std::string body;
    while (body.size() < (1u << 20)) {
        body += R"({"id": 12345, "name": "some item", "tags": ["a", "b"], "score": 0.75, "text": ")";
        for (int i = 0; i < 12; ++i) body += "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod ";
        body += hits ? "sk-live-REAL-4b1d9e77c2\"}\n" : "no secret here\"}\n";
    }
    std::string out;
    out.reserve(40 * 1024);
    for (auto _ : st) {
        core::stream_replacer r(set);
        for (std::size_t i = 0; i < body.size(); i += 32 * 1024) {
            out.clear();
            r.feed(std::string_view(body).substr(i, 32 * 1024), out);
            benchmark::DoNotOptimize(out.data());
        }
        out.clear();
        r.finish(out);
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * body.size()));
}
void BM_Redact_1MiB_NoHit(benchmark::State& st) { redact_case(st, false); }
void BM_Redact_1MiB_HitPerKiB(benchmark::State& st) { redact_case(st, true); }
BENCHMARK(BM_Redact_1MiB_NoHit);
BENCHMARK(BM_Redact_1MiB_HitPerKiB);

}  // namespace

BENCHMARK_MAIN();
