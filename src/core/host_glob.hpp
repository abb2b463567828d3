#pragma once
// Host and path matching with the Go iron-proxy's semantics, plus one improvement: hosts are
// normalised (lower-cased, trailing dot stripped) before matching (Go compares them as sent).
#include <string>
#include <string_view>

namespace iron::core {

// Lower-case ASCII and strip one trailing dot: "API.Example.COM." -> "api.example.com".
std::string normalize_host(std::string_view host);

// Strip a port from an authority: "a.b:443" -> "a.b", "[::1]:443" -> "::1", "[::1]" -> "::1",
// "::1" -> "::1" (bare IPv6 without brackets is returned whole), "a.b" -> "a.b".
std::string_view strip_port(std::string_view authority);

// Split an authority into host and port; port is empty when absent. Brackets are removed from IPv6.
struct host_port {
    std::string host;
    std::string port;
};
host_port split_host_port(std::string_view authority);

// Go path.Match-style glob: '*' = any run of non-'/' chars (crosses dots), '?' = one char,
// '[...]' classes with ranges and '^' negation ('!' is literal, as in Go), '\' escapes. Malformed
// pattern never matches.
bool path_match(std::string_view pattern, std::string_view name);

// Is the glob syntactically valid (used by config validation to reject bad globs)?
bool valid_glob(std::string_view pattern);

// Host glob (as Go): "*" matches everything (incl. empty); "*.x.com" matches "x.com" and any
// subdomain depth; otherwise path_match. Both sides should already be normalised.
bool match_host_glob(std::string_view pattern, std::string_view host);

// Path rule (as Go): pattern ending in "/*" matches the prefix exactly or anything below it
// ("/*" also matches ""); otherwise path_match.
bool match_path_rule(std::string_view pattern, std::string_view path);

}  // namespace iron::core
