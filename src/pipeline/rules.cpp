#include "pipeline/rules.hpp"

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::pipeline {
namespace {

std::string upper(std::string s) {
    for (char& c : s) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
}

// Optional string field of a rule map: absent/null -> "".
result<std::string> opt_string(const YAML::Node& map, const char* key, const config::yaml_ctx& ctx) {
    const YAML::Node n = map[key];
    if (config::is_absent(n)) return std::string();
    return config::get_string(n, ctx.child(key));
}

result<host_rule> parse_one(const YAML::Node& item, const config::yaml_ctx& ctx) {
    if (auto ok = config::expect_map(item, ctx, {"host", "cidr", "methods", "paths"}); !ok) return ok.err();

    auto host = opt_string(item, "host", ctx);
    if (!host) return host.err();
    auto cidr_text = opt_string(item, "cidr", ctx);
    if (!cidr_text) return cidr_text.err();
    if (!host->empty() && !cidr_text->empty()) return ctx.fail(item, "host and cidr are mutually exclusive");
    if (host->empty() && cidr_text->empty()) return ctx.fail(item, "one of host or cidr is required");

    host_rule rule;
    if (!host->empty()) {
        auto r = host_only_rule(*host);
        if (!r) return ctx.fail(item["host"], r.message());
        rule = std::move(r).value();
    } else {
        auto r = cidr_only_rule(*cidr_text);
        if (!r) return ctx.fail(item["cidr"], r.message());
        rule = std::move(r).value();
    }

    const YAML::Node methods_node = item["methods"];
    auto methods = config::get_string_list(methods_node, ctx.child("methods"));
    if (!methods) return methods.err();
    for (auto& m : *methods) rule.methods.push_back(upper(std::move(m)));
    // `["*"]` is the explicit spelling of "all methods" (#45): same as omitting the key.
    if (rule.methods.size() == 1 && rule.methods[0] == "*") rule.methods.clear();

    const YAML::Node paths_node = item["paths"];
    auto paths = config::get_string_list(paths_node, ctx.child("paths"));
    if (!paths) return paths.err();
    for (std::size_t i = 0; i < paths->size(); ++i) {
        const std::string& p = (*paths)[i];
        if (p.empty() || p[0] != '/') {
            return ctx.fail(paths_node[i], "path " + config::go_quote(p) + " must start with /");
        }
        rule.paths.push_back(p);
    }
    return rule;
}

// Such a rule matches exactly when its glob matches the host: see matches().
bool is_host_only(const host_rule& r) { return !r.cidr && r.methods.empty() && r.paths.empty(); }

}  // namespace

result<host_rule> host_only_rule(std::string_view glob) {
    std::string norm = core::normalize_host(glob);
    // Malformed globs never match in Go, silently; here they are a config error (fail early).
    if (!core::valid_glob(norm)) return make_error("invalid glob " + config::go_quote(glob));
    host_rule rule;
    rule.host_glob = std::move(norm);
    return rule;
}

result<host_rule> cidr_only_rule(std::string_view cidr_text) {
    auto c = core::cidr::parse(cidr_text);
    if (!c) {
        // Go's net.ParseCIDR wording, so messages match the Go proxy.
        return make_error("parsing CIDR " + config::go_quote(cidr_text) + ": invalid CIDR address: " +
                          std::string(cidr_text));
    }
    host_rule rule;
    rule.cidr = std::move(c).value();
    return rule;
}

result<std::vector<host_rule>> parse_rules(const YAML::Node& node, const config::yaml_ctx& ctx) {
    std::vector<host_rule> out;
    if (config::is_absent(node)) return out;
    if (!node.IsSequence()) return ctx.fail(node, "expected a list of rules");
    out.reserve(node.size());
    for (std::size_t i = 0; i < node.size(); ++i) {
        const YAML::Node item = node[i];
        auto r = parse_one(item, ctx.index(i));
        if (!r) return r.err();
        out.push_back(std::move(r).value());
    }
    return out;
}

bool matches(const host_rule& rule, const exchange& ex) {
    if (rule.cidr) {
        // Only literal IPs match a CIDR; hostnames are never resolved here (#100).
        auto ip = core::ip_address::parse(ex.policy_host);
        if (!ip || !rule.cidr->contains(*ip)) return false;
    } else if (!core::match_host_glob(rule.host_glob, ex.policy_host)) {
        return false;
    }
    // CONNECT is a host-level check only; see rules.hpp.
    if (ex.is_connect) return true;

    if (!rule.methods.empty()) {
        bool ok = false;
        for (const auto& m : rule.methods) {
            if (m == ex.method) {  // request method compared as received (case-sensitive), as in Go
                ok = true;
                break;
            }
        }
        if (!ok) return false;
    }
    if (!rule.paths.empty()) {
        bool ok = false;
        for (const auto& p : rule.paths) {
            if (core::match_path_rule(p, ex.path)) {
                ok = true;
                break;
            }
        }
        if (!ok) return false;
    }
    return true;
}

bool matches_any(const std::vector<host_rule>& rules, const exchange& ex) {
    for (const auto& r : rules) {
        if (matches(r, ex)) return true;
    }
    return false;
}

rule_set::rule_set(std::vector<host_rule> rules) {
    for (auto& r : rules) {
        if (is_host_only(r)) {
            host_only_.add(r.host_glob);
        } else {
            others_.push_back(std::move(r));
        }
    }
}

bool rule_set::matches_any(const exchange& ex) const {
    return host_only_.matches_any(ex.policy_host) || pipeline::matches_any(others_, ex);
}

}  // namespace iron::pipeline
