#pragma once
// The last step of loading a config: the Go proxy's checks in Go's order with Go's messages (first
// failure wins), then the checks on our extensions. Split from the loader so that the rules can be
// read apart from the decoding; the loader hands over where each value sat in the file.
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"

namespace iron::config {

// Where each value read from the file sits, by key path ("dns.records[0].type"), so that an error
// about a value names file:line:col. A value that an IRON_* variable replaced is forgotten: its
// error then names only the file.
class value_positions {
public:
    explicit value_positions(std::string file) : file_(std::move(file)) {}

    // 1-based line and column; line 0 records a value the file holds but whose node has no position.
    void remember(const std::string& path, int line, int column) { at_[path] = position{line, column}; }
    void forget(const std::string& path) { at_.erase(path); }
    bool has(const std::string& path) const { return at_.count(path) != 0; }

    // "file:line:col: <msg>" when the value came from the file with a position, else "file: <msg>".
    error fail_at(const std::string& path, const std::string& msg) const;

private:
    struct position {
        int line = 0, column = 0;
    };
    std::string file_;
    std::map<std::string, position> at_;
};

// IRON_PROXY_UPSTREAM_DENY_CIDRS: a comma-separated list, entries trimmed, each a CIDR; an empty
// entry ("a/8,,b/8", a trailing comma) is an error rather than silently dropped.
result<std::vector<std::string>> parse_deny_cidrs_list(const std::string& list);

// Checks `cfg` (already decoded, overridden by the environment and defaulted). On success the deny
// CIDR entries are stored trimmed, as the Go proxy keeps them.
result<void> validate(config& cfg, const value_positions& at);

}  // namespace iron::config
