#pragma once
// The host/method/path rule model (the Go proxy's) shared by every transform with `rules`.
//
// Differences from the Go proxy, all deliberate:
// * Host globs are normalised at parse time (lower-case, one trailing dot stripped) and matched
//   against exchange::policy_host, which the HTTP layer normalises the same way
//   (Go compares hosts case-sensitively, trailing dot and all).
// * Rule sub-trees are parsed strictly: unknown keys are errors with file:line:col (Go ignores them).
// * On a synthetic CONNECT (exchange::is_connect) only the host part of a rule is evaluated:
//   `methods` and `paths` describe requests inside the tunnel, which are checked again one by one
//   once the tunnel is open. In Go such rules rejected the tunnel outright.
#include <optional>
#include <string>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/cidr.hpp"
#include "core/host_glob_set.hpp"
#include "core/result.hpp"
#include "pipeline/exchange.hpp"

namespace iron::pipeline {

struct host_rule {
    std::string host_glob;            // normalised glob; empty when `cidr` is set
    std::optional<core::cidr> cidr;   // matches IP-literal hosts only (never resolved)
    std::vector<std::string> methods; // upper-cased; empty = all methods (also for `["*"]`)
    std::vector<std::string> paths;   // each starts with '/'; empty = all paths
};

// Parse a `rules:` sequence. `ctx` names the sequence itself (e.g. "transforms[0].config.rules");
// messages are "<file>:<line>:<col>: <path>.rules[i]: <what>" with Go's wording. A missing or
// null node yields an empty list (which matches nothing).
result<std::vector<host_rule>> parse_rules(const YAML::Node& node, const config::yaml_ctx& ctx);

// Compile one flat `domains` glob / `cidrs` entry into a host-only rule (allowlist); errors are
// "invalid glob \"x\"" and "parsing CIDR \"x\": invalid CIDR address: x" (the caller adds position).
result<host_rule> host_only_rule(std::string_view glob);
result<host_rule> cidr_only_rule(std::string_view cidr_text);

// Does the rule match this exchange (policy_host, method, path)? See the header comment for CONNECT.
bool matches(const host_rule& rule, const exchange& ex);
// Any rule matches; an empty list matches nothing. A linear scan: rule_set is the indexed form
// the transforms use, and must always answer the same.
bool matches_any(const std::vector<host_rule>& rules, const exchange& ex);

// A rule list compiled once at config time for the request path. Host-only glob rules (no cidr,
// methods or paths: flat allowlist `domains`, seed-era secret `hosts`, plain `{host: glob}`) match
// on the host alone, so they are answered together by one host_glob_set lookup. The others are
// checked one by one, in order. "Any rule matches" has no side effects, so which group is asked
// first does not change the answer.
class rule_set {
public:
    rule_set() = default;
    explicit rule_set(std::vector<host_rule> rules);

    bool matches_any(const exchange& ex) const;
    bool empty() const { return host_only_.empty() && others_.empty(); }

private:
    core::host_glob_set host_only_;
    std::vector<host_rule> others_;
};

}  // namespace iron::pipeline
