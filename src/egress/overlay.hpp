#pragma once
// How the runtime overlay (egress/state.hpp) joins a loaded config: its rules are appended to the
// `domains` / `cidrs` of every `allowlist` transform (a request passes the pipeline only if every
// allowlist lets it through), and its mode sets their `warn`. The config's nodes are shared, not
// copied, so an error in the file still points at its line and column.
#include <string>
#include <vector>

#include <boost/json/array.hpp>

#include "config/config.hpp"
#include "egress/state.hpp"

namespace iron::egress {

bool has_allowlist(const std::vector<config::transform_entry>& entries);

// `entries` with the overlay applied; `entries` itself is unchanged.
std::vector<config::transform_entry> apply_overlay(const std::vector<config::transform_entry>& entries,
                                                   const runtime_state& state);

// What the config's allowlists admit, one JSON object per entry:
// {"id":"cfg-N","source":"config","host"|"cidr"|"group"|"rule": …}. Ids number the entries in file
// order; they name a rule in answers, and the API refuses to delete them.
boost::json::array config_rules(const std::vector<config::transform_entry>& entries);

// The config's own mode: "warn" (every allowlist warns), "enforce" (none does), "mixed".
std::string config_mode(const std::vector<config::transform_entry>& entries);

}  // namespace iron::egress
