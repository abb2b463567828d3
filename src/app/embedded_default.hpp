#pragma once
// What running without -config needs beyond the embedded config text (config/default_config.cpp):
// a state directory holding the CA it mints, and the banner that says how to try the proxy.
#include <string>

#include "core/result.hpp"

namespace iron::app {

// The embedded default's state dir: $IRON_STATE_DIR, else $XDG_STATE_HOME/iron-proxy, else
// ~/.local/state/iron-proxy. Creates it (0700) and a CA in it when absent.
result<std::string> prepare_state_dir();

// On stderr: what the embedded default allows and three curl commands against the listeners.
void print_banner(const std::string& state_dir, const std::string& tunnel_addr, const std::string& http_addr);

}  // namespace iron::app
