#pragma once
// The `body_capture` transform: record a bounded prefix of request bodies in the
// audit record's top-level `body_capture` group {request_body, request_body_truncated}.
// Config: max_request_body_bytes (default 16384; <= 0 means the default), rules (at least one —
// Go accepts an empty list that never captures; here that is a config error, since it can only be
// a mistake). Never rejects; response bodies are never captured. The body is logged raw: place it
// BEFORE a secrets transform with match_body (building the pipeline refuses the other order, which would
// record the real secret).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"

namespace iron::transforms {

class body_capture final : public pipeline::transform {
public:
    static constexpr std::int64_t default_max_bytes = 16384;

    body_capture(std::vector<pipeline::host_rule> rules, std::int64_t max_bytes)
        : rules_(std::move(rules)), max_bytes_(max_bytes > 0 ? max_bytes : default_max_bytes) {}

    static result<std::unique_ptr<body_capture>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "body_capture"; }
    // Matching request with a non-empty buffered body: sets ex.body_capture and annotates
    // captured_bytes (int) and truncated (bool). Truncated = longer than max_request_body_bytes
    // here, or only a prefix was buffered (global cap). Always next.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override;
    // Records the body: it must see it before secrets are swapped into it.
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.must_see_body_before_secrets = true;
        return need;
    }

    std::int64_t max_bytes() const { return max_bytes_; }

private:
    pipeline::rule_set rules_;
    std::int64_t max_bytes_;
};

// Drop an incomplete UTF-8 sequence (up to 3 bytes) at the end of a cut prefix.
std::string_view utf8_trim_end(std::string_view prefix);
// `s` cut to at most `max` bytes without splitting a UTF-8 sequence at the end.
std::string_view utf8_prefix(std::string_view s, std::size_t max);

}  // namespace iron::transforms
