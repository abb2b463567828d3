#pragma once
// The `annotate` transform: copy selected request headers into this transform's
// trace, by host/method/path rules. Config: annotations: [{rules: [rule…], headers: [name…]}].
// Never rejects. Values are logged in plain text: place it BEFORE `secrets` so it records the
// placeholder, not the real credential (building the pipeline warns otherwise).
#include <memory>
#include <string>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"

namespace iron::transforms {

class annotate final : public pipeline::transform {
public:
    struct group {
        pipeline::rule_set rules;          // at least one
        std::vector<std::string> headers;  // canonical names, at least one
    };

    explicit annotate(std::vector<group> groups) : groups_(std::move(groups)) {}

    // Errors: "annotate: at least one annotation group is required"; per group "at least one rule
    // is required" / "at least one header is required"; unknown keys; rule errors (rules.hpp).
    static result<std::unique_ptr<annotate>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "annotate"; }
    // For every matching group, each listed header with a non-empty first value is recorded as
    // `header:<Canonical-Name>: value`; later groups overwrite the same key. Always next.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    // Records headers: it should run before secrets are swapped into them.
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.must_run_before_secrets = true;
        return need;
    }

private:
    std::vector<group> groups_;
};

}  // namespace iron::transforms
