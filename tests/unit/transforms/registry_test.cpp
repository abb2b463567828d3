#include "transforms/registry.hpp"

#include <gtest/gtest.h>

#include "config/yaml_util.hpp"

namespace iron::transforms {
namespace {

config::transform_entry entry(const char* name, const char* config_yaml, const char* where) {
    config::transform_entry e;
    e.name = name;
    if (config_yaml != nullptr) e.config = YAML::Load(config_yaml);
    e.where = where;
    return e;
}

TEST(Registry, BuildsInOrder) {
    std::vector<config::transform_entry> entries = {
        entry("allowlist", "domains: [a.com]", "f.yaml:3:5"),
        entry("allowlist", "domains: [b.com]\nwarn: true", "f.yaml:6:5"),
    };
    auto p = build_pipeline(entries, "f.yaml");
    ASSERT_TRUE(p) << p.message();
    EXPECT_EQ((*p)->names(), "allowlist \xE2\x86\x92 allowlist");

    // First allowlist rejects b.com: proves the order is the config order.
    pipeline::exchange ex;
    ex.method = "GET";
    ex.policy_host = "b.com";
    std::vector<audit::trace> traces;
    auto r = (*p)->run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, pipeline::verdict::kind::reject);
    ASSERT_EQ(traces.size(), 1u);
}

TEST(Registry, EmptyConfigAndEmptyList) {
    auto p = build_pipeline({entry("allowlist", nullptr, "f.yaml:2:3")}, "f.yaml");
    ASSERT_TRUE(p) << p.message();
    auto none = build_pipeline({}, "f.yaml");
    ASSERT_TRUE(none);
    EXPECT_TRUE((*none)->empty());
}

TEST(Registry, UnknownTransform) {
    auto p = build_pipeline({entry("allowlist", nullptr, "f.yaml:2:3"), entry("alowlist", nullptr, "f.yaml:4:5")},
                            "f.yaml");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.message(), "f.yaml:4:5: unknown transform \"alowlist\": unknown transform: \"alowlist\"");
}

TEST(Registry, ConfigErrorsCarryEntryPath) {
    YAML::Node root = YAML::Load("transforms:\n  - name: allowlist\n  - name: allowlist\n    config:\n      domainz: []\n");
    config::transform_entry a{"allowlist", root["transforms"][0]["config"], "f.yaml:2:5"};
    config::transform_entry b{"allowlist", root["transforms"][1]["config"], "f.yaml:3:5"};
    auto p = build_pipeline({a, b}, "f.yaml");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.message(), "f.yaml:5:7: transforms[1].config: unknown key \"domainz\" (allowed: domains, cidrs, groups, rules, warn)");
}

}  // namespace
}  // namespace iron::transforms
