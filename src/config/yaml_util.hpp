#pragma once
// Strict YAML decoding helpers shared by the config loader and every transform parser, so that a
// typo anywhere is an error with file:line:col and the key path (§14 item 9).
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
};

// Error unless `node` is a map whose keys are all in `allowed` (and no key appears twice).
result<void> expect_map(const YAML::Node& node, const yaml_ctx& ctx, std::initializer_list<std::string_view> allowed);
// Error if any mapping anywhere in the document has a duplicate key (yaml-cpp accepts them).
result<void> reject_duplicate_keys(const YAML::Node& root, const std::string& file);

result<std::string> get_string(const YAML::Node& node, const yaml_ctx& ctx);
result<bool> get_bool(const YAML::Node& node, const yaml_ctx& ctx);
result<std::int64_t> get_int(const YAML::Node& node, const yaml_ctx& ctx);
// A sequence of strings; a Null node yields an empty list.
result<std::vector<std::string>> get_string_list(const YAML::Node& node, const yaml_ctx& ctx);

}  // namespace iron::config
