#pragma once
// Command-line parsing with Go `flag` semantics (-x v, --x v, -x=v), so scripts written for the
// Go iron-proxy keep working.
#include <map>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace iron::app {

struct main_flags {
    std::string config_path;
    std::string token;
    bool check = false;
    bool help = false;
};

// Go-style flags: `bools` take no value (or =true/=false), `strings` take one. Non-flag arguments
// (and everything after "--") go to `positionals` when given, and are ignored otherwise (as the Go
// binary ignores them). An undefined flag is an error.
result<std::map<std::string, std::string>> parse_flags(const std::vector<std::string>& args,
                                                       const std::vector<std::string>& strings,
                                                       const std::vector<std::string>& bools,
                                                       std::vector<std::string>* positionals = nullptr);

result<main_flags> parse_main_flags(const std::vector<std::string>& args);
std::string usage();

// `iron-proxy generate-ca [-outdir D] [-name CN] [-expiry-hours N] [-alg A]`: returns the exit code.
int generate_ca_command(const std::vector<std::string>& args);

}  // namespace iron::app
