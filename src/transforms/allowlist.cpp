#include "transforms/allowlist.hpp"

#include "allowlist_groups/groups.hpp"
#include "config/yaml_util.hpp"

namespace iron::transforms {
namespace {

// Decode a flat list (`domains` or `cidrs`) into host-only rules via `compile`.
template <class Compile>
result<void> add_flat(const YAML::Node& config, const char* key, const config::yaml_ctx& ctx,
                      std::vector<pipeline::host_rule>& out, Compile compile) {
    const YAML::Node list = config[key];
    config::yaml_ctx list_ctx = ctx.child(key);
    auto entries = config::get_string_list(list, list_ctx);
    if (!entries) return entries.err();
    for (std::size_t i = 0; i < entries->size(); ++i) {
        auto rule = compile((*entries)[i]);
        if (!rule) return list_ctx.index(i).fail(list[i], rule.message());
        out.push_back(std::move(rule).value());
    }
    return ok();
}

// `groups: [github, PyPI]`: each named group's domains and cidrs join the flat entries (names are
// case-insensitive; an unknown one is an error listing the known groups).
result<void> add_groups(const YAML::Node& config, const config::yaml_ctx& ctx, std::vector<pipeline::host_rule>& out) {
    const YAML::Node list = config["groups"];
    config::yaml_ctx list_ctx = ctx.child("groups");
    auto names = config::get_string_list(list, list_ctx);
    if (!names) return names.err();
    for (std::size_t i = 0; i < names->size(); ++i) {
        auto group = allowlist_groups::lookup((*names)[i]);
        if (!group) return list_ctx.index(i).fail(list[i], group.message());
        for (const auto& d : (*group)->domains) {
            auto rule = pipeline::host_only_rule(d.value);
            if (!rule) return list_ctx.index(i).fail(list[i], rule.message());
            out.push_back(std::move(rule).value());
        }
        for (const auto& c : (*group)->cidrs) {
            auto rule = pipeline::cidr_only_rule(c.value);
            if (!rule) return list_ctx.index(i).fail(list[i], rule.message());
            out.push_back(std::move(rule).value());
        }
    }
    return ok();
}

}  // namespace

result<std::unique_ptr<allowlist>> allowlist::from_config(const YAML::Node& config, const config::yaml_ctx& ctx) {
    std::vector<pipeline::host_rule> rules;
    bool warn = false;
    if (config::is_absent(config)) return std::make_unique<allowlist>(std::move(rules), warn);

    if (auto ok = config::expect_map(config, ctx, {"domains", "cidrs", "groups", "rules", "warn"}); !ok) return ok.err();
    if (auto r = add_flat(config, "domains", ctx, rules, pipeline::host_only_rule); !r) return r.err();
    if (auto r = add_flat(config, "cidrs", ctx, rules, pipeline::cidr_only_rule); !r) return r.err();
    if (auto r = add_groups(config, ctx, rules); !r) return r.err();

    auto parsed = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!parsed) return parsed.err();
    for (auto& r : *parsed) rules.push_back(std::move(r));

    const YAML::Node warn_node = config["warn"];
    if (!config::is_absent(warn_node)) {
        auto w = config::get_bool(warn_node, ctx.child("warn"));
        if (!w) return w.err();
        warn = *w;
    }
    return std::make_unique<allowlist>(std::move(rules), warn);
}

pipeline::verdict allowlist::on_request(pipeline::exchange& ex) const {
    if (rules_.matches_any(ex)) return pipeline::verdict::next();
    if (warn_) {
        // Warn mode lets the request through but leaves a mark on this transform's trace.
        ex.note("action", "warn");
        return pipeline::verdict::next();
    }
    return pipeline::verdict::reject(403, "host not in allowlist");
}

}  // namespace iron::transforms
