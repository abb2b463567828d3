#include "egress/overlay.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"
#include "transforms/allowlist.hpp"

namespace iron::egress {
namespace {

std::vector<config::transform_entry> entries(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    std::vector<config::transform_entry> out;
    for (const auto& t : root["transforms"])
        out.push_back(config::transform_entry{t["name"].as<std::string>(), config::raw_node(t["config"]), ""});
    return out;
}

result<std::unique_ptr<transforms::allowlist>> build(const config::transform_entry& e) {
    return transforms::allowlist::from_config(e.config.node(), config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

pipeline::exchange req(const std::string& host) {
    pipeline::exchange ex;
    ex.method = "GET";
    ex.host = host;
    ex.policy_host = core::normalize_host(host);
    ex.path = "/";
    return ex;
}

bool passes(const transforms::allowlist& a, const std::string& host) {
    auto ex = req(host);
    return a.on_request(ex).what != pipeline::verdict::kind::reject;
}

runtime_state with_rules(std::optional<mode> m = std::nullopt) {
    runtime_state s;
    s.mode_override = m;
    s.rules = {{"rt-1", rule_kind::host, "*.added.test"}, {"rt-2", rule_kind::cidr, "10.1.0.0/16"}};
    return s;
}

TEST(EgressOverlay, AppendsRulesToEveryAllowlistAndLeavesTheConfigAlone) {
    auto cfg = entries(R"(
transforms:
  - name: allowlist
    config: {domains: [base.test], cidrs: [192.0.2.0/24]}
  - name: annotate
    config: {annotations: {a: b}}
  - name: allowlist
)");
    auto out = apply_overlay(cfg, with_rules());
    ASSERT_EQ(out.size(), 3u);
    for (std::size_t i : {0u, 2u}) {
        auto a = build(out[i]);
        ASSERT_TRUE(a) << a.message();
        EXPECT_TRUE(passes(**a, "x.added.test"));
        EXPECT_TRUE(passes(**a, "10.1.2.3"));
        EXPECT_FALSE(passes(**a, "other.test"));
    }
    EXPECT_TRUE(passes(**build(out[0]), "base.test"));
    EXPECT_TRUE(passes(**build(out[0]), "192.0.2.9"));
    EXPECT_EQ(out[1].config.node()["annotations"]["a"].as<std::string>(), "b");
    // The loaded config is unchanged (a reload or another change starts from it again).
    auto original = build(cfg[0]);
    ASSERT_TRUE(original);
    EXPECT_FALSE(passes(**original, "x.added.test"));
    EXPECT_EQ(cfg[0].config.node()["domains"].size(), 1u);
}

TEST(EgressOverlay, ModeOverridesTheConfigsWarn) {
    auto cfg = entries("transforms:\n  - name: allowlist\n    config: {domains: [base.test], warn: true}\n");
    EXPECT_EQ(config_mode(cfg), "warn");
    auto enforced = build(apply_overlay(cfg, with_rules(mode::enforce))[0]);
    ASSERT_TRUE(enforced) << enforced.message();
    EXPECT_FALSE(passes(**enforced, "other.test"));
    auto warned = build(apply_overlay(entries("transforms:\n  - name: allowlist\n"), runtime_state{mode::warn, {}, 1})[0]);
    ASSERT_TRUE(warned) << warned.message();
    auto ex = req("other.test");
    EXPECT_EQ(warned.value()->on_request(ex).what, pipeline::verdict::kind::next);
}

TEST(EgressOverlay, ErrorsInTheFileKeepTheirPosition) {
    auto cfg = entries("transforms:\n  - name: allowlist\n    config:\n      domains:\n        - ok.test\n        - bad[\n");
    auto a = build(apply_overlay(cfg, with_rules())[0]);
    ASSERT_FALSE(a);
    EXPECT_NE(a.message().find("c.yaml:6:"), std::string::npos) << a.message();
    // A wrong shape is left for the allowlist's own parser to report.
    cfg = entries("transforms:\n  - name: allowlist\n    config:\n      domains: notalist\n");
    a = build(apply_overlay(cfg, with_rules())[0]);
    ASSERT_FALSE(a);
    EXPECT_NE(a.message().find("c.yaml:4:"), std::string::npos) << a.message();
}

TEST(EgressOverlay, ListsTheConfigRulesWithIds) {
    auto cfg = entries(R"(
transforms:
  - name: allowlist
    config:
      domains: [a.test]
      cidrs: [10.0.0.0/8]
      groups: [github]
      rules: [{host: b.test, methods: [GET]}]
  - name: allowlist
    config: {domains: [c.test], warn: true}
)");
    EXPECT_EQ(boost::json::serialize(config_rules(cfg)),
              R"([{"id":"cfg-1","source":"config","host":"a.test"},{"id":"cfg-2","source":"config","cidr":"10.0.0.0/8"},)"
              R"({"id":"cfg-3","source":"config","group":"github"},)"
              R"({"id":"cfg-4","source":"config","rule":{"host":"b.test","methods":["GET"]}},)"
              R"({"id":"cfg-5","source":"config","host":"c.test"}])");
    EXPECT_EQ(config_mode(cfg), "mixed");
    EXPECT_TRUE(has_allowlist(cfg));
    EXPECT_FALSE(has_allowlist(entries("transforms:\n  - name: annotate\n")));
    EXPECT_EQ(config_mode(entries("transforms:\n  - name: allowlist\n")), "enforce");
}

}  // namespace
}  // namespace iron::egress
