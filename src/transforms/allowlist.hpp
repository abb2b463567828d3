#pragma once
// The `allowlist` transform: default-deny egress by host glob, CIDR or rule.
// Config keys: domains (globs), cidrs, groups (named rule groups, allowlist_groups/groups.hpp),
// rules (pipeline/rules.hpp), warn (bool). Parsed strictly.
#include <memory>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"

namespace iron::transforms {

class allowlist final : public pipeline::transform {
public:
    // Flat `domains`, `cidrs` and the groups' entries become host-only rules ahead of `rules`.
    allowlist(std::vector<pipeline::host_rule> rules, bool warn) : rules_(std::move(rules)), warn_(warn) {}

    // `config` may be null (nothing configured => deny everything). `ctx` names the config node.
    static result<std::unique_ptr<allowlist>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "allowlist"; }
    // Any match => next (no annotation). Otherwise warn => next + {"action":"warn"}, else 403.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    // Host-level policy, so it is the check run for CONNECT / SOCKS5 tunnels.
    bool applies_to_connect() const override { return true; }

private:
    pipeline::rule_set rules_;
    bool warn_;
};

}  // namespace iron::transforms
