#pragma once
// The `judge` transform: an LLM allow/deny gate. For a request its rules match, it shows the
// model a bounded JSON description of the request (envelope.hpp) under the operator's policy and
// lets it through on ALLOW, answers 403 on DENY. When the model cannot decide — an error status,
// a timeout, an unreadable answer, the circuit breaker open, more than max_concurrent calls
// already out — the `fallback` applies: deny (403, the default) or skip (let it through). The
// call is awaited, never blocking the worker thread. The API key is read once at start-up and
// never appears in an annotation, a log line or an error.
//
// Config (keys as the Go proxy's): name (required; the trace name), prompt (required), rules
// (required, at least one), provider {type: anthropic|openai, model, api_key_env (the variable
// must be set), base_url, max_tokens (256)}, fallback (deny|skip), timeout (8s), max_concurrent
// (100), circuit_breaker {consecutive_failures (5), cooldown (10s)}.
// Annotations: judge.instance, judge.model, judge.decision (ALLOW, DENY, FALLBACK_DENY,
// FALLBACK_ALLOW), judge.reason (≤ 512 bytes), judge.duration_ms, judge.input_tokens,
// judge.output_tokens, judge.fallback_applied (deny|skip), judge.circuit_breaker_tripped,
// judge.raw_output (≤ 2 KiB, when the answer did not parse).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "transforms/judge/breaker.hpp"
#include "transforms/judge/client.hpp"
#include "transforms/judge/provider.hpp"

namespace iron::transforms::judge {

enum class fallback_mode { deny, skip };

struct judge_settings {
    std::string name;
    std::string prompt;
    provider_kind provider = provider_kind::anthropic;
    std::string model;
    std::string api_key_env;
    std::string api_key;  // the variable's value at start-up
    base_url url;
    std::int64_t max_tokens = 256;
    fallback_mode fallback = fallback_mode::deny;
    std::chrono::nanoseconds timeout = std::chrono::seconds(8);
    std::int64_t max_concurrent = 100;
    std::int64_t breaker_failures = 5;
    std::chrono::nanoseconds breaker_cooldown = std::chrono::seconds(10);
};

class judge_transform final : public pipeline::transform {
public:
    judge_transform(judge_settings s, std::vector<pipeline::host_rule> rules, std::unique_ptr<llm_client> client);

    static result<std::unique_ptr<judge_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return settings_.name; }
    // Only reached if the request came to match the rules after the pipeline chose not to await
    // (a transform rewrote the path): fail closed rather than call the model synchronously.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool awaits_request(const pipeline::exchange& ex) const override { return rules_.matches_any(ex); }
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override { return rules_.matches_any(ex); }
    // It shows headers to a third party: it belongs before any secret swap.
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.must_run_before_secrets = true;
        return need;
    }

    const judge_settings& settings() const { return settings_; }
    const circuit_breaker& breaker() const { return breaker_; }

private:
    pipeline::verdict fallback(pipeline::exchange& ex, std::string_view why,
                               std::chrono::steady_clock::time_point start) const;
    pipeline::verdict decide(pipeline::exchange& ex, const model_answer& answer, circuit_breaker::permit& permit,
                             std::chrono::steady_clock::time_point start) const;
    std::string envelope_for(const pipeline::exchange& ex) const;
    // `text` without the API key (an endpoint could echo it back in an error body).
    std::string scrub(std::string text) const;

    judge_settings settings_;
    pipeline::rule_set rules_;
    std::unique_ptr<llm_client> client_;
    std::string system_prompt_;
    mutable circuit_breaker breaker_;
    mutable std::atomic<std::int64_t> in_flight_{0};
};

}  // namespace iron::transforms::judge
