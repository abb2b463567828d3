#include "transforms/header_allowlist.hpp"

#include "config/yaml_util.hpp"
#include "core/header_name.hpp"
#include "core/headers.hpp"

#include <algorithm>

#include <boost/json/array.hpp>

namespace iron::transforms {

result<std::unique_ptr<header_allowlist>> header_allowlist::from_config(const YAML::Node& config,
                                                                        const config::yaml_ctx& ctx) {
    const char* none = "header_allowlist: at least one header is required";
    if (config::is_absent(config)) return ctx.fail(config, none);
    if (auto r = config::expect_map(config, ctx, {"headers", "rules"}); !r) return r.err();
    auto allowed = parse_header_patterns(config["headers"], ctx.child("headers"));
    if (!allowed) return allowed.err();
    if (allowed->empty()) return ctx.fail(config, none);
    auto rules = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    return std::make_unique<header_allowlist>(std::move(*allowed), std::move(*rules));
}

pipeline::verdict header_allowlist::on_request(pipeline::exchange& ex) const {
    if (!rules_.empty() && !rules_.matches_any(ex)) return pipeline::verdict::next();
    std::vector<std::string> stripped;
    auto& entries = ex.request_headers.entries();
    auto keep = [&](const core::header_list::entry& h) {
        if (is_framing_or_host(h.name) || header_matches_any(allowed_, h.name)) return true;
        std::string canonical = core::canonical_header_name(h.name);
        if (std::find(stripped.begin(), stripped.end(), canonical) == stripped.end()) stripped.push_back(canonical);
        return false;
    };
    entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const auto& h) { return !keep(h); }),
                  entries.end());
    if (!stripped.empty()) {
        boost::json::array names;
        for (const auto& n : stripped) names.emplace_back(boost::json::string_view(n));
        ex.note("stripped_headers", std::move(names));
    }
    return pipeline::verdict::next();
}

}  // namespace iron::transforms
