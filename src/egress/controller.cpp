#include "egress/controller.hpp"

#include <algorithm>
#include <exception>

#include <boost/json/array.hpp>

#include "core/log.hpp"
#include "egress/overlay.hpp"

namespace iron::egress {

namespace json = boost::json;

namespace {

answer refused(unsigned status, std::string message) { return answer{status, json::object{{"error", message}}}; }

json::object rule_json(const runtime_rule& r) {
    return json::object{{"id", r.id}, {"source", "runtime"}, {kind_name(r.kind), r.value}};
}

// Start-up and reload keep an overlay they cannot apply (it is the operator's, not ours to drop).
void warn_if_inert(const config::config& cfg, const runtime_state& state) {
    if (!state.empty() && !has_allowlist(cfg.transforms))
        log::warn("runtime egress rules and mode are kept but not applied: the configuration has no allowlist transform",
                  {{"rules", state.rules.size()}});
}

}  // namespace

controller::controller(config::config cfg, runtime_state state, std::string state_path,
                       std::shared_ptr<runtime::policy_slot> slot, build_fn build)
    : cfg_(std::move(cfg)),
      state_(std::move(state)),
      state_path_(std::move(state_path)),
      slot_(std::move(slot)),
      build_(std::move(build)) {
    warn_if_inert(cfg_, state_);
}

config::config controller::overlaid(const config::config& cfg, const runtime_state& state) {
    config::config out = cfg;
    out.transforms = apply_overlay(cfg.transforms, state);
    return out;
}

answer controller::describe() const {
    std::lock_guard lock(mu_);
    json::array rules = config_rules(cfg_.transforms);
    for (const auto& r : state_.rules) rules.push_back(rule_json(r));
    const std::string from_config = config_mode(cfg_.transforms);
    json::object o;
    o["mode"] = state_.mode_override ? std::string(mode_name(*state_.mode_override)) : from_config;
    o["mode_source"] = state_.mode_override ? "runtime" : "config";
    o["config_mode"] = from_config;
    o["allowlist"] = has_allowlist(cfg_.transforms);
    o["state_path"] = state_path_.empty() ? json::value(nullptr) : json::value(state_path_);
    o["rules"] = std::move(rules);
    return answer{200, std::move(o)};
}

// Called with mu_ held: a change that could not be saved would be lost at the next restart.
std::optional<answer> controller::refuse_change() const {
    if (state_path_.empty())
        return refused(409, "management.state_path is not set: a runtime egress change would not survive a restart");
    return std::nullopt;
}

// Called with mu_ held: build, save, swap — in that order, so a failure changes nothing.
std::optional<answer> controller::commit(runtime_state next) {
    std::shared_ptr<const runtime::request_policy> built;
    try {
        auto made = build_(overlaid(cfg_, next));
        if (!made) {
            log::error("egress change failed", {{"error", made.message()}});
            return refused(422, made.message());
        }
        built = std::move(*made);
    } catch (const std::exception& e) {
        log::error("egress change failed", {{"error", e.what()}});
        return refused(500, "internal error");
    }
    if (auto saved = save_state(state_path_, next); !saved) {
        log::error("egress change failed", {{"error", saved.message()}});
        return refused(500, saved.message());
    }
    slot_->set(std::move(built));
    state_ = std::move(next);
    return std::nullopt;
}

answer controller::add_rule(rule_kind kind, std::string_view value) {
    if (auto checked = check_rule_value(kind, value); !checked)
        return refused(400, std::string(kind_name(kind)) + ": " + checked.message());
    std::lock_guard lock(mu_);
    if (auto no = refuse_change()) return *no;
    if (!has_allowlist(cfg_.transforms))
        return refused(409, "the configuration has no allowlist transform: runtime egress rules add to an allowlist");
    for (const auto& r : state_.rules)
        if (r.kind == kind && r.value == value) return answer{200, rule_json(r)};
    runtime_state next = state_;
    runtime_rule rule{"rt-" + std::to_string(next.next_id++), kind, std::string(value)};
    next.rules.push_back(rule);
    if (auto failed = commit(std::move(next))) return *failed;
    log::info("egress rule added", {{"event", "management"}, {"id", rule.id}, {kind_name(rule.kind), rule.value}});
    return answer{201, rule_json(rule)};
}

answer controller::remove_rule(std::string_view id) {
    std::lock_guard lock(mu_);
    for (const auto& c : config_rules(cfg_.transforms)) {
        if (c.as_object().at("id").as_string() == id)
            return refused(403, "rule " + std::string(id) +
                                    " comes from the config file and is read-only: edit the file and POST /v1/reload");
    }
    auto it = std::find_if(state_.rules.begin(), state_.rules.end(), [&](const runtime_rule& r) { return r.id == id; });
    if (it == state_.rules.end()) return refused(404, "no egress rule " + std::string(id));
    if (auto no = refuse_change()) return *no;
    const runtime_rule removed = *it;
    runtime_state next = state_;
    next.rules.erase(next.rules.begin() + (it - state_.rules.begin()));
    if (auto failed = commit(std::move(next))) return *failed;
    log::info("egress rule removed", {{"event", "management"}, {"id", removed.id}, {kind_name(removed.kind), removed.value}});
    return answer{200, json::object{{"removed", rule_json(removed)}}};
}

answer controller::set_mode(mode m) {
    std::lock_guard lock(mu_);
    if (auto no = refuse_change()) return *no;
    if (!has_allowlist(cfg_.transforms))
        return refused(409, "the configuration has no allowlist transform: the egress mode applies to an allowlist");
    runtime_state next = state_;
    next.mode_override = m;
    if (auto failed = commit(std::move(next))) return *failed;
    log::info("egress mode set", {{"event", "management"}, {"mode", mode_name(m)}});
    return answer{200, json::object{{"mode", mode_name(m)}, {"mode_source", "runtime"}}};
}

result<void> controller::reload(config::config fresh) {
    std::lock_guard lock(mu_);
    auto built = build_(overlaid(fresh, state_));
    if (!built) return built.err();
    const std::string names = (*built)->pipeline->names();
    slot_->set(std::move(*built));
    cfg_ = std::move(fresh);
    warn_if_inert(cfg_, state_);
    log::info("configuration reloaded", {{"transforms", names}, {"runtime_egress_rules", state_.rules.size()}});
    return ok();
}

}  // namespace iron::egress
