#pragma once
// The MCP tool policy (top-level `mcp:`), compiled: which requests belong to which MCP server
// (host/method/path rules), the tools each server may be asked to run, and the argument
// constraints (`when`) a call must meet. Default deny: a tool not listed is refused.
//
//   mcp:
//     error: {code: -32001, message: "blocked by iron-proxy policy"}   # both optional
//     servers:
//       - name: github                       # unique; the audit record's mcp.server
//         rules: [{host: mcp.github.com, paths: ["/mcp"]}]            # at least one
//         tools:
//           - name: search_repositories      # allowed with any arguments
//           - name: create_issue
//             when:                          # all must hold
//               - {path: owner, equals: ironsh}
//               - {path: labels.0, in: [bug, docs]}
//               - {path: title, matches: "^safe-"}
//
// Unlike the Go proxy, unknown keys anywhere in the section are errors (a misspelled `when` would
// otherwise allow every argument).
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"

namespace iron::mcp {

// Decisions' reasons, as the audit record's mcp.messages[].reason spells them.
namespace reason {
inline constexpr const char* tool_not_allowed = "tool_not_allowed";
inline constexpr const char* argument_constraint = "argument_constraint";
inline constexpr const char* malformed_jsonrpc = "malformed_jsonrpc";
inline constexpr const char* oversize_body = "oversize_body";
}  // namespace reason

// A `matches` constraint only ever looks at this many bytes: a longer string value fails it (the
// call is refused). Bounds the time and stack of the regex search on what a workload sends.
inline constexpr std::size_t max_matched_value_bytes = 1024;

// One `when` clause: a dotted path into the call's `arguments` (numeric segments index arrays)
// and exactly one test.
struct clause {
    enum class test { equals, in, matches };
    std::vector<std::string> path;
    test what = test::equals;
    std::vector<boost::json::value> values;  // equals: one; in: the allowed values (scalars)
    std::string pattern;                     // matches: as written
    std::regex re;                           // matches: compiled (ECMAScript syntax, searched)

    bool holds(const boost::json::value* arguments) const;
};

struct tool {
    std::string name;
    std::vector<clause> when;
};

struct server {
    std::string name;
    pipeline::rule_set rules;
    std::vector<tool> tools;

    const tool* find(std::string_view name) const;
    bool allows(std::string_view name) const { return find(name) != nullptr; }
    // Empty when the call may go; else the reason it may not.
    std::string_view refuse(std::string_view tool_name, const boost::json::value* arguments) const;
};

struct policy {
    std::int64_t error_code = -32001;
    std::string error_message = "blocked by iron-proxy policy";
    std::vector<server> servers;

    // The first server whose rules match the request, or null.
    const server* match(const pipeline::exchange& ex) const;
    const server* find(std::string_view name) const;
};

// Decodes the `mcp:` section. No servers (or no section) means no policy: nullopt. Errors are
// "<file>:<line>:<col>: mcp.servers[i]...: <what>".
result<std::optional<policy>> parse_policy(const YAML::Node& node, const std::string& file);

// The value at `path` inside `root` (objects by key, arrays by a decimal index), or null.
const boost::json::value* resolve(const boost::json::value* root, const std::vector<std::string>& path);

}  // namespace iron::mcp
