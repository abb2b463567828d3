#include "pipeline/rules.hpp"

#include <gtest/gtest.h>

#include "config/yaml_util.hpp"

namespace iron::pipeline {
namespace {

result<std::vector<host_rule>> parse(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return parse_rules(root["rules"], config::yaml_ctx{"t.yaml", "transforms[0].config.rules"});
}

std::vector<host_rule> must_parse(const std::string& yaml) {
    auto r = parse(yaml);
    EXPECT_TRUE(r) << r.message();
    return r ? *r : std::vector<host_rule>{};
}

exchange req(const char* method, const char* host, const char* path) {
    exchange ex;
    ex.method = method;
    ex.policy_host = host;
    ex.path = path;
    return ex;
}

TEST(Rules, ParseErrors) {
    struct ec {
        const char* yaml;
        const char* message;
    };
    const ec cases[] = {
        {"rules:\n  - host: a.com\n    cidr: 10.0.0.0/8\n",
         "t.yaml:2:5: transforms[0].config.rules[0]: host and cidr are mutually exclusive"},
        {"rules:\n  - host: a.com\n  - methods: [GET]\n",
         "t.yaml:3:5: transforms[0].config.rules[1]: one of host or cidr is required"},
        {"rules:\n  - host: a.com\n    paths: [/ok, v1/x]\n",
         "t.yaml:3:18: transforms[0].config.rules[0]: path \"v1/x\" must start with /"},
        {"rules:\n  - host: \"api[\"\n",
         "t.yaml:2:11: transforms[0].config.rules[0]: invalid glob \"api[\""},
        {"rules:\n  - cidr: 10.0.0.1\n",
         "t.yaml:2:11: transforms[0].config.rules[0]: parsing CIDR \"10.0.0.1\": invalid CIDR address: 10.0.0.1"},
        {"rules:\n  - host: a.com\n    method: [GET]\n",
         "t.yaml:3:5: transforms[0].config.rules[0]: unknown key \"method\" (allowed: host, cidr, methods, paths)"},
    };
    for (const auto& c : cases) {
        auto r = parse(c.yaml);
        ASSERT_FALSE(r) << c.yaml;
        EXPECT_EQ(r.message(), c.message) << c.yaml;
    }
    auto not_list = parse("rules: {host: a}\n");
    EXPECT_FALSE(not_list);
    auto not_map = parse("rules: [a.com]\n");
    EXPECT_FALSE(not_map);
}

TEST(Rules, ParseNormalisesAndDefaults) {
    auto rules = must_parse(
        "rules:\n"
        "  - host: API.Example.COM.\n"
        "    methods: [get, Post]\n"
        "  - cidr: 10.1.2.3/8\n"
        "    methods: ['*']\n"
        "    paths: []\n");
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0].host_glob, "api.example.com");
    EXPECT_EQ(rules[0].methods, (std::vector<std::string>{"GET", "POST"}));
    ASSERT_TRUE(rules[1].cidr);
    EXPECT_EQ(rules[1].cidr->text, "10.0.0.0/8");
    EXPECT_TRUE(rules[1].methods.empty());
    EXPECT_TRUE(rules[1].paths.empty());
    EXPECT_TRUE(must_parse("other: 1\n").empty());
    EXPECT_TRUE(must_parse("rules:\n").empty());
}

TEST(Rules, MatchingTable) {
    auto rules = must_parse(
        "rules:\n"
        "  - host: '*.openai.com'\n"
        "    methods: [POST]\n"
        "    paths: [/v1/*]\n"
        "  - host: api.github.com\n"
        "    paths: ['/repos/*/issues', /exact]\n"
        "  - cidr: 10.0.0.0/8\n"
        "  - cidr: 2001:db8::/32\n"
        "  - host: '*'\n"
        "    methods: ['*']\n"
        "    paths: [/public/*]\n");
    ASSERT_EQ(rules.size(), 5u);
    struct mc {
        int rule;
        const char* method;
        const char* host;
        const char* path;
        bool match;
    };
    const mc cases[] = {
        {0, "POST", "api.openai.com", "/v1/chat", true},
        {0, "POST", "openai.com", "/v1", true},
        {0, "GET", "api.openai.com", "/v1/chat", false},
        {0, "post", "api.openai.com", "/v1/chat", false},  // request method is case-sensitive
        {0, "POST", "api.openai.com", "/v2", false},
        {0, "POST", "notopenai.com", "/v1", false},
        {1, "GET", "api.github.com", "/repos/x/issues", true},
        {1, "GET", "api.github.com", "/repos/x/y/issues", false},
        {1, "DELETE", "api.github.com", "/exact", true},
        {1, "GET", "api.github.com", "/exact/more", false},
        {2, "GET", "10.2.3.4", "/", true},
        {2, "GET", "11.2.3.4", "/", false},
        {2, "GET", "ten.example.com", "/", false},  // hostnames are never resolved
        {3, "GET", "2001:db8::5", "/", true},
        {3, "GET", "2001:db9::5", "/", false},
        {4, "PATCH", "anything", "/public/x", true},
        {4, "PATCH", "", "/public", true},
        {4, "PATCH", "anything", "/private", false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(matches(rules[static_cast<std::size_t>(c.rule)], req(c.method, c.host, c.path)), c.match)
            << "rule " << c.rule << " " << c.method << " " << c.host << c.path;
    }
    EXPECT_TRUE(matches_any(rules, req("GET", "10.0.0.1", "/")));
    EXPECT_FALSE(matches_any(rules, req("GET", "example.org", "/")));
    EXPECT_FALSE(matches_any({}, req("GET", "example.org", "/")));
}

TEST(Rules, ConnectIsHostOnly) {
    auto rules = must_parse(
        "rules:\n"
        "  - host: api.openai.com\n"
        "    methods: [POST]\n"
        "    paths: [/v1/*]\n");
    exchange ex = req("CONNECT", "api.openai.com", "");
    ex.is_connect = true;
    EXPECT_TRUE(matches(rules[0], ex));  // method/path are checked per request inside the tunnel
    ex.policy_host = "evil.com";
    EXPECT_FALSE(matches(rules[0], ex));
    // Without is_connect, the same synthetic request would not match (Go's behaviour).
    EXPECT_FALSE(matches(rules[0], req("CONNECT", "api.openai.com", "")));
}

// rule_set answers host-only rules from its index and the rest one by one; every sub-list of a
// mixed rule list must still give what the linear matches_any gives, for every request shape.
TEST(RuleSet, AgreesWithLinearMatchesAny) {
    auto rules = must_parse(
        "rules:\n"
        "  - host: api.openai.com\n"
        "    methods: [POST]\n"
        "    paths: [/v1/*]\n"
        "  - host: \"*.github.com\"\n"
        "  - cidr: 10.0.0.0/8\n"
        "  - host: exact.example.com\n"
        "  - host: \"api.*.net\"\n"
        "  - host: \"*.internal\"\n"
        "    paths: [/admin]\n"
        "  - host: \"10.1.*\"\n"
        "  - cidr: \"2001:db8::/32\"\n"
        "    methods: [GET]\n");
    ASSERT_EQ(rules.size(), 8u);
    const char* hosts[] = {"api.openai.com", "github.com", "a.b.github.com", "notgithub.com", "10.1.2.3",
                           "11.1.2.3", "exact.example.com", "x.exact.example.com", "api.x.y.net", "a.internal",
                           "2001:db8::1", "", "API.OPENAI.COM"};
    const char* methods[] = {"GET", "POST", "CONNECT"};
    const char* paths[] = {"", "/", "/v1/chat", "/admin"};
    for (std::size_t mask = 0; mask < (1u << rules.size()); ++mask) {
        std::vector<host_rule> subset;
        for (std::size_t i = 0; i < rules.size(); ++i)
            if (mask & (1u << i)) subset.push_back(rules[i]);
        const rule_set set(subset);
        EXPECT_EQ(set.empty(), subset.empty());
        for (const char* h : hosts)
            for (const char* m : methods)
                for (const char* p : paths)
                    for (bool connect : {false, true}) {
                        exchange ex = req(m, h, p);
                        ex.is_connect = connect;
                        ASSERT_EQ(set.matches_any(ex), matches_any(subset, ex))
                            << "mask " << mask << " " << m << " " << h << p << (connect ? " (connect)" : "");
                    }
    }
}

}  // namespace
}  // namespace iron::pipeline
