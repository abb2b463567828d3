#include "transforms/annotate.hpp"

#include <map>

#include "config/yaml_util.hpp"
#include "core/header_name.hpp"
#include "core/headers.hpp"
#include "transforms/header_match.hpp"

namespace iron::transforms {

result<std::unique_ptr<annotate>> annotate::from_config(const YAML::Node& config, const config::yaml_ctx& ctx) {
    const char* none = "annotate: at least one annotation group is required";
    if (config::is_absent(config)) return ctx.fail(config, none);
    if (auto r = config::expect_map(config, ctx, {"annotations"}); !r) return r.err();
    const YAML::Node list = config["annotations"];
    const config::yaml_ctx lc = ctx.child("annotations");
    if (config::is_absent(list)) return ctx.fail(config, none);
    if (!list.IsSequence()) return lc.fail(list, "expected a list of {rules, headers} groups");
    if (list.size() == 0) return lc.fail(list, none);

    std::vector<group> groups;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const YAML::Node g = list[i];
        const config::yaml_ctx gc = lc.index(i);
        if (auto r = config::expect_map(g, gc, {"rules", "headers"}); !r) return r.err();
        group out;
        auto rules = pipeline::parse_rules(g["rules"], gc.child("rules"));
        if (!rules) return rules.err();
        if (rules->empty()) return gc.fail(g, "at least one rule is required");
        out.rules = pipeline::rule_set(std::move(*rules));
        auto headers = config::get_string_list(g["headers"], gc.child("headers"));
        if (!headers) return headers.err();
        if (headers->empty()) return gc.fail(g, "at least one header is required");
        for (auto& h : *headers) {
            if (h.empty()) return gc.child("headers").fail(g["headers"], "header name must not be empty");
            out.headers.push_back(core::canonical_header_name(h));
        }
        groups.push_back(std::move(out));
    }
    return std::make_unique<annotate>(std::move(groups));
}

pipeline::verdict annotate::on_request(pipeline::exchange& ex) const {
    // Sorted keys (Go marshals the annotation map sorted); later groups overwrite.
    std::map<std::string, std::string> notes;
    for (const auto& g : groups_) {
        if (!g.rules.matches_any(ex)) continue;
        for (const auto& name : g.headers) {
            if (core::iequals(name, "Host")) continue;  // not a header in Go's model
            auto v = ex.request_headers.get(name);
            if (v && !v->empty()) notes["header:" + name] = std::string(*v);
        }
    }
    for (auto& [k, v] : notes) ex.note(k, boost::json::string_view(v));
    return pipeline::verdict::next();
}

}  // namespace iron::transforms
