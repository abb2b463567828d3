#pragma once
// The management API's egress verbs (/v1/egress) and /v1/reload behind one lock: each change
// builds the whole policy from the current config plus the changed overlay, saves the overlay to
// management.state_path, and only then swaps the policy slot (requests in flight keep their
// snapshot). A change that fails any step changes nothing, in memory or on disk.
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "config/config.hpp"
#include "egress/state.hpp"
#include "runtime/state.hpp"

namespace iron::egress {

// What the API answers: a status and one JSON object ({"error": …} when refused).
struct answer {
    unsigned status;
    boost::json::object body;
};

class controller {
public:
    using build_fn = std::function<result<std::shared_ptr<const runtime::request_policy>>(const config::config&)>;

    // `cfg` is the config as loaded from the file (without the overlay); `state` was loaded from
    // `state_path` ("" = no persistence: changes are refused); `slot` already holds the policy
    // built from both.
    controller(config::config cfg, runtime_state state, std::string state_path,
               std::shared_ptr<runtime::policy_slot> slot, build_fn build);

    // 200 {"mode","mode_source","config_mode","allowlist","state_path","rules":[…]}.
    answer describe() const;
    // Adds a host glob or CIDR, checked as the allowlist checks its own entries: 201 and the rule,
    // or 200 and the existing one when an identical runtime rule is already there.
    answer add_rule(rule_kind kind, std::string_view value);
    // Runtime rules only: a config rule is 403 (edit the file), an unknown id 404.
    answer remove_rule(std::string_view id);
    answer set_mode(mode m);
    // POST /v1/reload: `fresh` (just loaded from the file) with the overlay kept.
    result<void> reload(config::config fresh);

    // Applies the overlay to `cfg` (what start-up and every change build from).
    static config::config overlaid(const config::config& cfg, const runtime_state& state);

private:
    std::optional<answer> refuse_change() const;
    std::optional<answer> commit(runtime_state next);

    mutable std::mutex mu_;
    config::config cfg_;
    runtime_state state_;
    const std::string state_path_;
    const std::shared_ptr<runtime::policy_slot> slot_;
    const build_fn build_;
};

}  // namespace iron::egress
