#include "egress/controller.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "config/yaml_util.hpp"
#include "support/temp_dir.hpp"
#include "transforms/registry.hpp"

namespace iron::egress {
namespace {

config::config config_with(const std::string& yaml) {
    config::config cfg;
    cfg.source = "c.yaml";
    YAML::Node root = YAML::Load(yaml);
    for (const auto& t : root["transforms"])
        cfg.transforms.push_back(config::transform_entry{t["name"].as<std::string>(), config::raw_node(t["config"]), ""});
    return cfg;
}

const char* const allowlist_yaml = "transforms:\n  - name: allowlist\n    config: {domains: [base.test]}\n";

// A controller over a real pipeline build; `fail_builds` makes the next builds fail.
struct fixture {
    test::temp_dir dir;
    bool fail_builds = false;
    int builds = 0;
    std::shared_ptr<runtime::policy_slot> slot = std::make_shared<runtime::policy_slot>(nullptr);
    std::unique_ptr<controller> ctl;

    explicit fixture(const std::string& yaml = allowlist_yaml, bool persist = true) {
        controller::build_fn build = [this](const config::config& c)
            -> result<std::shared_ptr<const runtime::request_policy>> {
            ++builds;
            if (fail_builds) return make_error("build refused");
            auto pipe = transforms::build_pipeline(c.transforms, c.source);
            if (!pipe) return pipe.err();
            auto p = std::make_shared<runtime::request_policy>();
            p->pipeline = std::move(*pipe);
            return std::shared_ptr<const runtime::request_policy>(std::move(p));
        };
        ctl = std::make_unique<controller>(config_with(yaml), runtime_state{}, persist ? state_path() : "", slot, build);
    }
    std::string state_path() const { return dir / "state.json"; }
};

TEST(EgressController, AddBuildsSavesThenSwaps) {
    fixture f;
    answer a = f.ctl->add_rule(rule_kind::host, "*.new.test");
    EXPECT_EQ(a.status, 201u);
    EXPECT_EQ(a.body.at("id").as_string(), "rt-1");
    ASSERT_NE(f.slot->get(), nullptr);
    EXPECT_EQ(f.slot->get()->pipeline->names(), "allowlist");
    auto saved = load_state(f.state_path());
    ASSERT_TRUE(saved) << saved.message();
    ASSERT_EQ(saved->rules.size(), 1u);
    EXPECT_EQ(saved->rules[0].value, "*.new.test");
    // The same rule again: answered as is, nothing rebuilt.
    const int builds = f.builds;
    EXPECT_EQ(f.ctl->add_rule(rule_kind::host, "*.new.test").status, 200u);
    EXPECT_EQ(f.builds, builds);
    EXPECT_EQ(f.ctl->describe().body.at("rules").as_array().size(), 2u);
}

TEST(EgressController, AFailedBuildChangesNothing) {
    fixture f;
    f.fail_builds = true;
    answer a = f.ctl->add_rule(rule_kind::host, "x.test");
    EXPECT_EQ(a.status, 422u);
    EXPECT_EQ(a.body.at("error").as_string(), "build refused");
    EXPECT_EQ(f.slot->get(), nullptr);
    EXPECT_FALSE(std::filesystem::exists(f.state_path()));
    EXPECT_EQ(f.ctl->set_mode(mode::warn).status, 422u);
    EXPECT_EQ(f.ctl->describe().body.at("mode_source").as_string(), "config");
}

TEST(EgressController, AFailedSaveChangesNothing) {
    fixture f;
    std::filesystem::create_directory(f.state_path() + ".tmp");  // the temporary file cannot be made
    answer a = f.ctl->add_rule(rule_kind::cidr, "10.0.0.0/8");
    EXPECT_EQ(a.status, 500u);
    EXPECT_NE(std::string(a.body.at("error").as_string()).find("writing management.state_path"), std::string::npos);
    EXPECT_EQ(f.slot->get(), nullptr);
    EXPECT_EQ(f.ctl->describe().body.at("rules").as_array().size(), 1u);
}

TEST(EgressController, ConfigRulesAreReadOnly) {
    fixture f;
    EXPECT_EQ(f.ctl->remove_rule("cfg-1").status, 403u);
    EXPECT_EQ(f.ctl->remove_rule("rt-9").status, 404u);
    EXPECT_EQ(f.ctl->add_rule(rule_kind::host, "x.test").status, 201u);
    answer removed = f.ctl->remove_rule("rt-1");
    EXPECT_EQ(removed.status, 200u);
    EXPECT_EQ(removed.body.at("removed").at("host").as_string(), "x.test");
    auto saved = load_state(f.state_path());
    ASSERT_TRUE(saved);
    EXPECT_TRUE(saved->rules.empty());
    EXPECT_EQ(saved->next_id, 2u);  // rt-1 is never handed out again
}

TEST(EgressController, RefusesWithoutAStatePathOrAnAllowlist) {
    fixture no_state(allowlist_yaml, false);
    EXPECT_EQ(no_state.ctl->add_rule(rule_kind::host, "x.test").status, 409u);
    EXPECT_EQ(no_state.ctl->set_mode(mode::warn).status, 409u);
    fixture no_allowlist("transforms:\n  - name: annotate\n    config: {annotations: {a: b}}\n");
    EXPECT_EQ(no_allowlist.ctl->add_rule(rule_kind::host, "x.test").status, 409u);
    EXPECT_EQ(no_allowlist.ctl->set_mode(mode::enforce).status, 409u);
    EXPECT_EQ(no_allowlist.ctl->describe().body.at("allowlist").as_bool(), false);
    EXPECT_EQ(no_allowlist.builds, 0);
    // Bad values never reach the build.
    EXPECT_EQ(no_state.ctl->add_rule(rule_kind::cidr, "nope").status, 400u);
}

TEST(EgressController, ReloadKeepsTheOverlay) {
    fixture f;
    ASSERT_EQ(f.ctl->set_mode(mode::warn).status, 200u);
    ASSERT_EQ(f.ctl->add_rule(rule_kind::host, "x.test").status, 201u);
    ASSERT_TRUE(f.ctl->reload(config_with("transforms:\n  - name: allowlist\n    config: {domains: [a.test, b.test]}\n")));
    auto d = f.ctl->describe().body;
    EXPECT_EQ(d.at("mode").as_string(), "warn");
    EXPECT_EQ(d.at("config_mode").as_string(), "enforce");
    EXPECT_EQ(d.at("rules").as_array().size(), 3u);
    f.fail_builds = true;
    EXPECT_FALSE(f.ctl->reload(config_with(allowlist_yaml)));
    EXPECT_EQ(f.ctl->describe().body.at("rules").as_array().size(), 3u);  // the failed reload swapped nothing
}

}  // namespace
}  // namespace iron::egress
