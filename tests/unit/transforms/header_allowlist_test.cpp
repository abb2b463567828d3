// The header_allowlist transform (following the Go proxy's own unit-test cases).
#include "transforms/header_allowlist.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::transforms {
namespace {

using pipeline::exchange;
using pipeline::verdict;

result<std::unique_ptr<header_allowlist>> build(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return header_allowlist::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

exchange req(const std::string& host) {
    exchange ex;
    ex.method = "GET";
    ex.host = host;
    ex.policy_host = core::normalize_host(core::strip_port(host));
    ex.path = "/";
    ex.request_headers.add("Host", host);
    return ex;
}

std::string run(const header_allowlist& h, exchange& ex) {
    audit::trace t;
    ex.current_trace = &t;
    EXPECT_EQ(h.on_request(ex).what, verdict::kind::next);
    ex.current_trace = nullptr;
    return boost::json::serialize(t.annotations);
}

std::string names(const exchange& ex) {
    std::string out;
    for (const auto& e : ex.request_headers.entries()) out += (out.empty() ? "" : ",") + e.name;
    return out;
}

TEST(HeaderAllowlist, StripsUnlistedCaseInsensitive) {
    auto h = build("config:\n  headers: [authorization, Content-Type]\n");
    ASSERT_TRUE(h) << h.message();
    EXPECT_EQ((*h)->name(), "header_allowlist");
    exchange ex = req("a.com");
    ex.request_headers.add("AUTHORIZATION", "x");
    ex.request_headers.add("content-type", "y");
    ex.request_headers.add("x-leak", "1");
    ex.request_headers.add("X-Leak", "2");
    ex.request_headers.add("Cookie", "c");
    ex.request_headers.add("Content-Length", "3");
    EXPECT_EQ(run(**h, ex), R"({"stripped_headers":["X-Leak","Cookie"]})");
    // Host and framing fields are never stripped.
    EXPECT_EQ(names(ex), "Host,AUTHORIZATION,content-type,Content-Length");
}

TEST(HeaderAllowlist, RegexEntries) {
    auto h = build("config:\n  headers: ['/^x-trace-/', accept]\n");
    ASSERT_TRUE(h) << h.message();
    exchange ex = req("a.com");
    ex.request_headers.add("X-TRACE-ID", "1");
    ex.request_headers.add("x-trace-span", "2");
    ex.request_headers.add("x-tracer", "3");
    ex.request_headers.add("Accept", "*/*");
    EXPECT_EQ(run(**h, ex), R"({"stripped_headers":["X-Tracer"]})");
    EXPECT_EQ(names(ex), "Host,X-TRACE-ID,x-trace-span,Accept");
}

TEST(HeaderAllowlist, NothingStrippedNoAnnotation) {
    auto h = build("config:\n  headers: [accept]\n");
    exchange ex = req("a.com");
    ex.request_headers.add("accept", "x");
    EXPECT_EQ(run(**h, ex), "{}");
}

TEST(HeaderAllowlist, RulesScopeAndNoRulesMeansAll) {
    auto scoped = build("config:\n  headers: [accept]\n  rules: [{host: '*.internal'}]\n");
    ASSERT_TRUE(scoped) << scoped.message();
    exchange outside = req("example.com");
    outside.request_headers.add("Cookie", "c");
    EXPECT_EQ(run(**scoped, outside), "{}");
    EXPECT_EQ(names(outside), "Host,Cookie");
    exchange inside = req("svc.internal:8080");
    inside.request_headers.add("Cookie", "c");
    EXPECT_EQ(run(**scoped, inside), R"({"stripped_headers":["Cookie"]})");

    auto all = build("config:\n  headers: [accept]\n");
    exchange any = req("whatever.org");
    any.request_headers.add("Cookie", "c");
    EXPECT_EQ(run(**all, any), R"({"stripped_headers":["Cookie"]})");
}

TEST(HeaderAllowlist, Validation) {
    const std::string p = "transforms[0].config";
    struct {
        const char* yaml;
        std::string want;
    } cases[] = {
        {"config:\n", "c.yaml:2:1: " + p + ": header_allowlist: at least one header is required"},
        {"config:\n  headers: []\n", "c.yaml:2:3: " + p + ": header_allowlist: at least one header is required"},
        {"config:\n  rules: [{host: a}]\n", "c.yaml:2:3: " + p + ": header_allowlist: at least one header is required"},
        {"config:\n  headers: [a]\n  header: [b]\n",
         "c.yaml:3:3: " + p + ": unknown key \"header\" (allowed: headers, rules)"},
        {"config:\n  headers: [a]\n  rules: [{host: a, cidr: 10.0.0.0/8}]\n",
         "c.yaml:3:11: " + p + ".rules[0]: host and cidr are mutually exclusive"},
    };
    for (const auto& c : cases) {
        auto h = build(c.yaml);
        ASSERT_FALSE(h) << c.yaml;
        EXPECT_EQ(h.message(), c.want) << c.yaml;
    }
    auto bad_re = build("config:\n  headers: ['/[/']\n");
    ASSERT_FALSE(bad_re);
    EXPECT_EQ(bad_re.message().rfind("c.yaml:2:13: " + p + ".headers[0]: invalid regex \"/[/\": ", 0), 0u);
}

}  // namespace
}  // namespace iron::transforms
