#include "egress/overlay.hpp"

#include <boost/json/object.hpp>

#include "config/yaml_util.hpp"

namespace iron::egress {

namespace json = boost::json;

namespace {

bool is_allowlist(const config::transform_entry& e) { return e.name == "allowlist"; }

// `list` (absent or a sequence) with `extra` scalars appended, sharing the original items.
YAML::Node appended(const YAML::Node& list, const std::vector<std::string>& extra) {
    YAML::Node out(YAML::NodeType::Sequence);
    if (!config::is_absent(list) && list.IsSequence())
        for (const auto& item : list) out.push_back(item);
    for (const auto& v : extra) out.push_back(YAML::Node(v));
    return out;
}

// One allowlist's config with the overlay applied. A node of the wrong shape is left alone: the
// transform's own parser reports it, with its position.
YAML::Node overlaid(const YAML::Node& original, const runtime_state& state) {
    if (!config::is_absent(original) && !original.IsMap()) return original;
    std::vector<std::string> hosts, cidrs;
    for (const auto& r : state.rules) (r.kind == rule_kind::host ? hosts : cidrs).push_back(r.value);
    YAML::Node out(YAML::NodeType::Map);
    auto replaced = [&](const std::string& key) {
        return (key == "domains" && !hosts.empty()) || (key == "cidrs" && !cidrs.empty()) ||
               (key == "warn" && state.mode_override);
    };
    if (!config::is_absent(original)) {
        for (const auto& kv : original) {
            const bool scalar_key = kv.first.IsScalar();
            if (scalar_key && replaced(kv.first.Scalar())) {
                const bool sequence_or_null = config::is_absent(kv.second) || kv.second.IsSequence();
                if (kv.first.Scalar() != "warn" && !sequence_or_null) return original;
                continue;
            }
            out.force_insert(kv.first, kv.second);
        }
    }
    const YAML::Node none;
    if (!hosts.empty()) out["domains"] = appended(config::is_absent(original) ? none : original["domains"], hosts);
    if (!cidrs.empty()) out["cidrs"] = appended(config::is_absent(original) ? none : original["cidrs"], cidrs);
    if (state.mode_override) out["warn"] = *state.mode_override == mode::warn;
    return out;
}

json::value yaml_to_json(const YAML::Node& n) {
    if (n.IsSequence()) {
        json::array a;
        for (const auto& item : n) a.push_back(yaml_to_json(item));
        return a;
    }
    if (n.IsMap()) {
        json::object o;
        for (const auto& kv : n) o[kv.first.as<std::string>("")] = yaml_to_json(kv.second);
        return o;
    }
    if (n.IsScalar()) return json::value(n.Scalar());
    return nullptr;
}

void add_strings(const YAML::Node& list, const char* kind, json::array& out) {
    if (config::is_absent(list) || !list.IsSequence()) return;
    for (const auto& item : list) {
        if (!item.IsScalar()) continue;
        out.push_back(json::object{{"id", "cfg-" + std::to_string(out.size() + 1)}, {"source", "config"},
                                   {kind, item.Scalar()}});
    }
}

}  // namespace

bool has_allowlist(const std::vector<config::transform_entry>& entries) {
    for (const auto& e : entries)
        if (is_allowlist(e)) return true;
    return false;
}

std::vector<config::transform_entry> apply_overlay(const std::vector<config::transform_entry>& entries,
                                                   const runtime_state& state) {
    std::vector<config::transform_entry> out = entries;
    if (state.empty()) return out;
    for (auto& e : out)
        if (is_allowlist(e)) e.config = config::raw_node(overlaid(e.config.node(), state));
    return out;
}

json::array config_rules(const std::vector<config::transform_entry>& entries) {
    json::array out;
    for (const auto& e : entries) {
        if (!is_allowlist(e)) continue;
        const YAML::Node& c = e.config.node();
        if (config::is_absent(c) || !c.IsMap()) continue;
        add_strings(c["domains"], "host", out);
        add_strings(c["cidrs"], "cidr", out);
        add_strings(c["groups"], "group", out);
        if (const YAML::Node rules = c["rules"]; !config::is_absent(rules) && rules.IsSequence()) {
            for (const auto& r : rules)
                out.push_back(json::object{{"id", "cfg-" + std::to_string(out.size() + 1)}, {"source", "config"},
                                           {"rule", yaml_to_json(r)}});
        }
    }
    return out;
}

std::string config_mode(const std::vector<config::transform_entry>& entries) {
    std::size_t lists = 0, warning = 0;
    for (const auto& e : entries) {
        if (!is_allowlist(e)) continue;
        ++lists;
        const YAML::Node& c = e.config.node();
        if (config::is_absent(c) || !c.IsMap() || config::is_absent(c["warn"])) continue;
        if (auto w = config::get_bool(c["warn"], config::yaml_ctx{}); w && *w) ++warning;
    }
    if (warning == 0) return "enforce";
    return warning == lists ? "warn" : "mixed";
}

}  // namespace iron::egress
