#pragma once
// The command-line tools beside the proxy itself (main.cpp dispatches on the first argument):
//   iron-proxy audit [-follow] [-action A[,A…]] [-host GLOB] [-json] [FILE…]
//   iron-proxy allowlist groups [NAME]
//   iron-proxy allowlist suggest [-min-count N] [-collapse] [-collapse-min N] FILE…
//   iron-proxy egress list|add -host H|-cidr C|remove ID|mode warn|enforce [-management A] [-config F]
// Each returns the process exit code: 0 done, 1 failed, 2 bad usage.
#include <string>
#include <vector>

namespace iron::cli {

int audit_command(const std::vector<std::string>& args);
int allowlist_command(const std::vector<std::string>& args);
int egress_command(const std::vector<std::string>& args);

}  // namespace iron::cli
