#pragma once
// Allowlist rule groups: named, reviewed sets of host globs and CIDRs (GitHub, PyPI, Docker, ...)
// that an `allowlist` names with `groups: [...]` instead of spelling every registry host out.
// Each group is one data file in src/allowlist_groups/data/ with a comment per entry saying what
// uses it; the files are compiled into the binary, so a group means the same on every machine
// running the same build.
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace iron::allowlist_groups {

struct entry {
    std::string value;    // a host glob (domains) or a CIDR (cidrs), as written in the file
    std::string used_by;  // the entry's comment: what contacts it
};

struct group {
    std::string name;  // lower-case, the data file's name
    std::string description;
    std::vector<entry> domains;
    std::vector<entry> cidrs;
};

// Every group, sorted by name. The data files are checked when first read (a broken file is a
// build defect that the unit tests catch): parse errors throw std::logic_error.
const std::vector<group>& all();

// The group called `name`, compared case-insensitively; nullptr when there is none.
const group* find(std::string_view name);

// "anthropic, apt, docker, ...": the known names, for error messages and usage text.
std::string known_names();

// `find`, or the config error "unknown allowlist group \"x\" (known groups: ...)".
result<const group*> lookup(std::string_view name);

// Parses one data file; exposed for the tests. Errors name the file and the problem.
result<group> parse_group(std::string_view name, std::string_view text);

}  // namespace iron::allowlist_groups
