#include "transforms/allowlist.hpp"

#include <gtest/gtest.h>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::transforms {
namespace {

using pipeline::exchange;
using pipeline::verdict;

result<std::unique_ptr<allowlist>> build(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return allowlist::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

std::unique_ptr<allowlist> must_build(const std::string& yaml) {
    auto r = build(yaml);
    EXPECT_TRUE(r) << r.message();
    return r ? std::move(r).value() : nullptr;
}

// The HTTP layer fills policy_host from the Host header: port stripped, normalised.
exchange req(const std::string& method, const std::string& host, const std::string& path = "/") {
    exchange ex;
    ex.method = method;
    ex.host = host;
    ex.policy_host = core::normalize_host(core::strip_port(host));
    ex.path = path;
    return ex;
}

bool allowed(const allowlist& a, exchange ex) {
    audit::trace t;
    ex.current_trace = &t;
    return a.on_request(ex).what == verdict::kind::next;
}

TEST(Allowlist, NameAndConnect) {
    auto a = must_build("config:\n  domains: [a.com]\n");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->name(), "allowlist");
    EXPECT_TRUE(a->applies_to_connect());
}

TEST(Allowlist, ExactAndWildcard) {
    auto a = must_build("config:\n  domains: [api.example.com, '*.openai.com']\n");
    ASSERT_TRUE(a);
    EXPECT_TRUE(allowed(*a, req("GET", "api.example.com")));
    EXPECT_FALSE(allowed(*a, req("GET", "www.example.com")));
    EXPECT_TRUE(allowed(*a, req("GET", "openai.com")));        // apex
    EXPECT_TRUE(allowed(*a, req("GET", "a.b.api.openai.com")));  // deep
    EXPECT_FALSE(allowed(*a, req("GET", "notopenai.com")));
    EXPECT_TRUE(allowed(*a, req("GET", "api.example.com:8443")));  // port stripped
    EXPECT_TRUE(allowed(*a, req("GET", "API.Example.com.")));      // normalised (Go: case-sensitive)
}

TEST(Allowlist, RejectIs403AndResponseNoop) {
    auto a = must_build("config:\n  domains: [a.com]\n");
    ASSERT_TRUE(a);
    exchange ex = req("GET", "b.com");
    auto v = a->on_request(ex);
    EXPECT_EQ(v.what, verdict::kind::reject);
    EXPECT_EQ(v.status, 403);
    EXPECT_EQ(a->on_response(ex).what, verdict::kind::next);
}

TEST(Allowlist, CidrMatchesLiteralIpsOnly) {
    auto a = must_build("config:\n  cidrs: [10.0.0.0/8, '2001:db8::/32']\n");
    ASSERT_TRUE(a);
    EXPECT_TRUE(allowed(*a, req("GET", "10.1.2.3")));
    EXPECT_TRUE(allowed(*a, req("GET", "10.1.2.3:8080")));
    EXPECT_TRUE(allowed(*a, req("GET", "[2001:db8::1]:443")));
    EXPECT_FALSE(allowed(*a, req("GET", "192.168.1.1")));
    EXPECT_FALSE(allowed(*a, req("GET", "localhost")));  // never resolved
}

TEST(Allowlist, EmptyDeniesAll) {
    for (const char* y : {"config:\n", "config: {}\n", "other: 1\n"}) {
        auto a = must_build(y);
        ASSERT_TRUE(a) << y;
        EXPECT_FALSE(allowed(*a, req("GET", "example.com"))) << y;
    }
}

TEST(Allowlist, RulesWithMethodsAndPaths) {
    auto a = must_build(
        "config:\n"
        "  domains: [flat.com]\n"
        "  rules:\n"
        "    - host: api.github.com\n"
        "      methods: [get]\n"
        "      paths: ['/repos/*']\n"
        "    - cidr: 192.168.0.0/16\n"
        "      methods: [POST]\n");
    ASSERT_TRUE(a);
    EXPECT_TRUE(allowed(*a, req("GET", "flat.com", "/anything")));
    EXPECT_TRUE(allowed(*a, req("GET", "api.github.com", "/repos/x/y")));
    EXPECT_FALSE(allowed(*a, req("POST", "api.github.com", "/repos/x")));
    EXPECT_FALSE(allowed(*a, req("GET", "api.github.com", "/user")));
    EXPECT_TRUE(allowed(*a, req("POST", "192.168.3.4", "/")));
    EXPECT_FALSE(allowed(*a, req("GET", "192.168.3.4", "/")));
}

TEST(Allowlist, ConnectIsHostOnly) {
    auto a = must_build(
        "config:\n"
        "  rules:\n"
        "    - host: api.github.com\n"
        "      methods: [GET]\n"
        "      paths: ['/repos/*']\n");
    ASSERT_TRUE(a);
    exchange ex = req("CONNECT", "api.github.com:443", "");
    ex.is_connect = true;
    EXPECT_TRUE(allowed(*a, ex));
    exchange other = req("CONNECT", "evil.com:443", "");
    other.is_connect = true;
    EXPECT_FALSE(allowed(*a, other));
}

TEST(Allowlist, WarnModeAnnotates) {
    auto a = must_build("config:\n  domains: [a.com]\n  warn: true\n");
    ASSERT_TRUE(a);
    exchange ex = req("GET", "b.com");
    audit::trace t;
    ex.current_trace = &t;
    EXPECT_EQ(a->on_request(ex).what, verdict::kind::next);
    EXPECT_EQ(t.annotations.at("action").as_string(), "warn");

    audit::trace t2;
    exchange hit = req("GET", "a.com");
    hit.current_trace = &t2;
    EXPECT_EQ(a->on_request(hit).what, verdict::kind::next);
    EXPECT_TRUE(t2.annotations.empty());  // matches carry no annotation
}

TEST(Allowlist, ConfigErrors) {
    struct ec {
        const char* yaml;
        const char* message;
    };
    const ec cases[] = {
        {"config:\n  domain: [a.com]\n",
         "c.yaml:2:3: transforms[0].config: unknown key \"domain\" (allowed: domains, cidrs, groups, rules, warn)"},
        {"config:\n  domains: [ok.com, 'bad[']\n", "c.yaml:2:21: transforms[0].config.domains[1]: invalid glob \"bad[\""},
        {"config:\n  cidrs: [10.0.0.0/8, nope]\n",
         "c.yaml:2:23: transforms[0].config.cidrs[1]: parsing CIDR \"nope\": invalid CIDR address: nope"},
        {"config:\n  rules:\n    - host: a.com\n      cidr: 10.0.0.0/8\n",
         "c.yaml:3:7: transforms[0].config.rules[0]: host and cidr are mutually exclusive"},
    };
    for (const auto& c : cases) {
        auto r = build(c.yaml);
        ASSERT_FALSE(r) << c.yaml;
        EXPECT_EQ(r.message(), c.message) << c.yaml;
    }
    EXPECT_FALSE(build("config: [a.com]\n"));
    EXPECT_FALSE(build("config:\n  warn: maybe\n"));
    EXPECT_FALSE(build("config:\n  domains: a.com\n"));
}

// `groups:` merge the named groups' entries with the flat lists; names are case-insensitive.
TEST(Allowlist, GroupsMergeWithDomains) {
    auto a = must_build("config:\n  domains: [internal.example]\n  groups: [PyPI, github]\n");
    ASSERT_TRUE(a);
    EXPECT_TRUE(allowed(*a, req("GET", "pypi.org")));
    EXPECT_TRUE(allowed(*a, req("GET", "files.pythonhosted.org")));
    EXPECT_TRUE(allowed(*a, req("GET", "api.github.com")));
    EXPECT_TRUE(allowed(*a, req("GET", "internal.example")));
    EXPECT_FALSE(allowed(*a, req("GET", "registry.npmjs.org")));
    EXPECT_TRUE(allowed(*a, req("GET", "140.82.112.3")));  // GitHub's SSH range, as a literal IP
}

TEST(Allowlist, UnknownGroupListsTheKnownOnes) {
    auto r = build("config:\n  groups: [pypi, nosuch]\n");
    ASSERT_FALSE(r);
    EXPECT_NE(r.message().find("c.yaml:2:"), std::string::npos) << r.message();
    EXPECT_NE(r.message().find("transforms[0].config.groups[1]"), std::string::npos) << r.message();
    EXPECT_NE(r.message().find("unknown allowlist group \"nosuch\""), std::string::npos) << r.message();
    EXPECT_NE(r.message().find("known groups: anthropic, apt,"), std::string::npos) << r.message();
}

TEST(Allowlist, GroupsMustBeAList) {
    EXPECT_FALSE(build("config:\n  groups: pypi\n"));
}

}  // namespace
}  // namespace iron::transforms
