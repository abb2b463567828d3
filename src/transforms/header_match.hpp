#pragma once
// Header-name matching shared by secrets (match_headers), header_allowlist (headers) and annotate:
// literal names compared case-insensitively, and `/regex/` entries matched case-insensitively
// against the canonical name (Go's http.CanonicalHeaderKey), as in the Go proxy (#103, #104).
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"

namespace iron::transforms {

// One `headers:` / `match_headers:` entry.
struct header_pattern {
    std::string literal;  // the user's spelling; empty for a regex entry
    std::regex re;        // valid only when is_regex
    bool is_regex = false;
    std::string source;   // the entry as written, for messages
};

// Parse a list of names and `/regex/` entries. Invalid regexes are errors at `ctx.index(i)`:
// `invalid regex "/x(/": <why>`.
result<std::vector<header_pattern>> parse_header_patterns(const YAML::Node& list, const config::yaml_ctx& ctx);

// Does `name` (any casing as on the wire) match the pattern?
bool header_matches(const header_pattern& p, std::string_view name);
bool header_matches_any(const std::vector<header_pattern>& ps, std::string_view name);

// Headers a request-shaping transform must never touch: Host is not a header in the Go model
// (it lives in req.Host), and the HTTP layer owns the framing fields.
bool is_framing_or_host(std::string_view name);

}  // namespace iron::transforms
