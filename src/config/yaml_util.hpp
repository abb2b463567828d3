#pragma once
// Strict YAML decoding helpers shared by the config loader and every transform parser, so that a
// typo anywhere is an error with file:line:col and the key path (Go silently ignores unknown keys
// inside transform configs).
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/result.hpp"

namespace iron::config {

// Context for messages: the file name and the key path of the node being decoded.
struct yaml_ctx {
    std::string file;
    std::string path;  // e.g. "transforms[0].config.domains[2]"

    yaml_ctx child(std::string_view key) const;  // path + "." + key (or key when path empty)
    yaml_ctx index(std::size_t i) const;         // path + "[i]"
    // "<file>:<line>:<col>: <path>: <what>" using the node's Mark (1-based line and column).
    error fail(const YAML::Node& at, std::string_view what) const;
    // "<file>:<line>:<col>" of the node, or just "<file>" when the node has no position.
    std::string where(const YAML::Node& at) const;
};

// True for a missing key or an explicit null (`key:` / `key: ~`): Go's decoder leaves the field at
// its zero value in both cases, so callers treat them alike.
bool is_absent(const YAML::Node& node);

// Error unless `node` is a map whose keys are all in `allowed` (and no key appears twice).
result<void> expect_map(const YAML::Node& node, const yaml_ctx& ctx, std::initializer_list<std::string_view> allowed);
// Error if any mapping anywhere in the document has a duplicate key (yaml-cpp accepts them).
result<void> reject_duplicate_keys(const YAML::Node& root, const std::string& file);

// Any scalar, as its text (Go's decoder also turns `listen: 8080` into "8080"); null yields "".
result<std::string> get_string(const YAML::Node& node, const yaml_ctx& ctx);
// Plain true/false (any case Go accepts) plus the YAML 1.1 yes/no/on/off/y/n that yaml.v3 takes for
// typed bools; quoted scalars and null are errors.
result<bool> get_bool(const YAML::Node& node, const yaml_ctx& ctx);
// Plain decimal (with '_' separators), 0x/0o/0b; quoted scalars, floats, null, ambiguous leading
// zeros ("0100", octal in Go) and int64 overflow are errors.
result<std::int64_t> get_int(const YAML::Node& node, const yaml_ctx& ctx);
// Optional fields of map `m`: an absent or null `key` keeps `out` (its default); otherwise the
// value as get_string / get_bool read it, errors pointing at the key.
result<void> read_optional_string(const YAML::Node& m, std::string_view key, const yaml_ctx& ctx, std::string& out);
result<void> read_optional_bool(const YAML::Node& m, std::string_view key, const yaml_ctx& ctx, bool& out);
// A sequence of strings; a Null node yields an empty list.
result<std::vector<std::string>> get_string_list(const YAML::Node& node, const yaml_ctx& ctx);
// A Go duration string ("30s", "1.5h"). Plain YAML numbers are rejected like Go's yaml.v3 does
// ("expected a duration string like \"30s\""); null, "" and "0" yield zero (= unset). Negative values
// are returned as-is: positivity is the caller's rule.
result<std::chrono::nanoseconds> get_duration(const YAML::Node& node, const yaml_ctx& ctx);

// Go's time.Duration.String() ("1h30m0s", "-5s", "1.5ms"), for "must be positive; got X" messages.
std::string format_go_duration(std::chrono::nanoseconds d);
// Go's strconv.Quote / %q for ASCII text: "a\"b", control bytes escaped. Used so messages match Go.
std::string go_quote(std::string_view text);
// Go's strconv.ParseBool (1,t,T,TRUE,true,True / 0,f,F,FALSE,false,False) with its error text, so
// IRON_* variable errors read exactly like the Go proxy's.
result<bool> go_parse_bool(std::string_view text);
// Go's strconv.ParseInt(text, 10, 64) (fn = "ParseInt") or strconv.Atoi (fn = "Atoi") with its error
// text; values outside [lo, hi] are "value out of range".
result<std::int64_t> go_parse_int(std::string_view text, std::string_view fn, std::int64_t lo, std::int64_t hi);

}  // namespace iron::config
