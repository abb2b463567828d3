#pragma once
// Command-line parsing with Go `flag` semantics (-x v, --x v, -x=v), so scripts written for the
// Go iron-proxy keep working.
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

result<main_flags> parse_main_flags(const std::vector<std::string>& args);
std::string usage();

// `iron-proxy generate-ca [-outdir D] [-name CN] [-expiry-hours N] [-alg A]`: returns the exit code.
int generate_ca_command(const std::vector<std::string>& args);

}  // namespace iron::app
