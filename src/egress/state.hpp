#pragma once
// The runtime egress overlay (management API: /v1/egress): extra allowlist entries and a mode that
// the operator adds without editing the config file, and the file that keeps them across restarts
// (management.state_path). Runtime rules only ever add allowances; the file's own rules are never
// changed through the API.
//
// The file is one JSON object:
//   {"version":1,"mode":"warn","next_id":3,"rules":[{"id":"rt-1","host":"x.example"},{"id":"rt-2","cidr":"10.0.0.0/8"}]}
// "mode" is optional (absent: the config's own `warn` settings apply). It is read strictly: an
// unknown key, a wrong type, a duplicate id or an entry the allowlist would refuse is an error that
// names the file, so a damaged file stops start-up instead of silently dropping rules.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace iron::egress {

enum class mode { warn, enforce };

std::string_view mode_name(mode m);
std::optional<mode> parse_mode(std::string_view text);

// A host glob (as in an allowlist's `domains`) or a CIDR (as in its `cidrs`).
enum class rule_kind { host, cidr };

std::string_view kind_name(rule_kind k);  // "host" | "cidr"

struct runtime_rule {
    std::string id;  // "rt-<n>", never reused
    rule_kind kind = rule_kind::host;
    std::string value;
};

struct runtime_state {
    std::optional<mode> mode_override;
    std::vector<runtime_rule> rules;
    std::uint64_t next_id = 1;

    bool empty() const { return !mode_override && rules.empty(); }
};

// Checks `value` the way the allowlist checks a `domains` / `cidrs` entry; the error says why.
result<void> check_rule_value(rule_kind kind, std::string_view value);

result<runtime_state> parse_state(std::string_view text);
std::string render_state(const runtime_state& state);

// A missing file (or path "") is an empty state (first start); anything else that cannot be read or parsed is
// an error naming the file.
result<runtime_state> load_state(const std::string& path);
// Writes `state` to a temporary file beside `path` (mode 0600), fsyncs it, renames it over `path`
// and fsyncs the directory: a crash leaves either the old or the new file, never a torn one.
result<void> save_state(const std::string& path, const runtime_state& state);

}  // namespace iron::egress
