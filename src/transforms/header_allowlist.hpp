#pragma once
// The `header_allowlist` transform: strip every request header that is not
// listed. Config: headers: [name | /regex/] (at least one), rules (optional; empty = every request).
// Host and the framing fields (Content-Length, Transfer-Encoding) are never stripped: the first is
// not a header in the Go model, the others belong to the HTTP layer. Place it after secrets and
// annotate.
#include <memory>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "transforms/header_match.hpp"

namespace iron::transforms {

class header_allowlist final : public pipeline::transform {
public:
    header_allowlist(std::vector<header_pattern> allowed, std::vector<pipeline::host_rule> rules)
        : allowed_(std::move(allowed)), rules_(std::move(rules)) {}

    // Errors: "header_allowlist: at least one header is required", invalid regex, rule errors.
    static result<std::unique_ptr<header_allowlist>> from_config(const YAML::Node& config,
                                                                 const config::yaml_ctx& ctx);

    std::string_view name() const override { return "header_allowlist"; }
    // Strips unlisted headers of matching requests; annotation `stripped_headers: [canonical names]`
    // only when something was stripped. Always next.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;

private:
    std::vector<header_pattern> allowed_;
    pipeline::rule_set rules_;  // empty = all requests
};

}  // namespace iron::transforms
