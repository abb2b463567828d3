#pragma once
// The rule-group data files as compiled into the binary (generated from
// src/allowlist_groups/data/*.yaml by cmake/allowlist_groups.cmake). Read through groups.hpp.
#include <vector>

namespace iron::allowlist_groups {

struct embedded_file {
    const char* name;  // the file name without .yaml: the group's name
    const char* text;  // the file, verbatim
};

// Sorted by name.
const std::vector<embedded_file>& embedded_files();

}  // namespace iron::allowlist_groups
