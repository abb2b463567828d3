// The annotate transform (following the Go proxy's own unit-test cases).
#include "transforms/annotate.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::transforms {
namespace {

using pipeline::exchange;
using pipeline::verdict;

result<std::unique_ptr<annotate>> build(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return annotate::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

exchange req(const std::string& host, const std::string& method = "GET", const std::string& path = "/") {
    exchange ex;
    ex.method = method;
    ex.host = host;
    ex.policy_host = core::normalize_host(core::strip_port(host));
    ex.path = path;
    ex.request_headers.add("Host", host);
    return ex;
}

// The annotations as JSON after running the hook (must continue).
std::string notes(const annotate& a, exchange& ex) {
    audit::trace t;
    ex.current_trace = &t;
    auto v = a.on_request(ex);
    EXPECT_EQ(v.what, verdict::kind::next);
    ex.current_trace = nullptr;
    return boost::json::serialize(t.annotations);
}

const char* const k_cfg = R"(config:
  annotations:
    - rules:
        - host: "api.openai.com"
          methods: ["POST"]
          paths: ["/v1/*"]
      headers: ["x-request-id"]
    - rules:
        - host: "*.anthropic.com"
      headers: ["x-request-id", "X-Trace"]
)";

TEST(Annotate, CapturesMatchingRequestsCanonicalNames) {
    auto a = build(k_cfg);
    ASSERT_TRUE(a) << a.message();
    EXPECT_EQ((*a)->name(), "annotate");
    exchange ex = req("api.openai.com", "POST", "/v1/chat/completions");
    ex.request_headers.add("X-REQUEST-ID", "req-1");
    EXPECT_EQ(notes(**a, ex), R"({"header:X-Request-Id":"req-1"})");
    EXPECT_EQ((*a)->on_response(ex).what, verdict::kind::next);
}

TEST(Annotate, NoMatchMethodPathFiltering) {
    auto a = build(k_cfg);
    for (auto [method, path, host] : {std::tuple{"GET", "/v1/x", "api.openai.com"},
                                      std::tuple{"POST", "/v2/x", "api.openai.com"},
                                      std::tuple{"POST", "/v1/x", "example.com"}}) {
        exchange ex = req(host, method, path);
        ex.request_headers.add("x-request-id", "r");
        EXPECT_EQ(notes(**a, ex), "{}") << method << " " << path << " " << host;
    }
}

TEST(Annotate, WildcardHostWithPortMissingHeaderSkippedFirstValue) {
    auto a = build(k_cfg);
    exchange ex = req("anthropic.com:443");
    ex.request_headers.add("X-Trace", "t1");
    ex.request_headers.add("x-trace", "t2");  // only the first value
    EXPECT_EQ(notes(**a, ex), R"({"header:X-Trace":"t1"})");  // x-request-id absent: skipped

    exchange empty = req("api.anthropic.com");
    empty.request_headers.add("X-Request-Id", "");  // empty first value: skipped
    EXPECT_EQ(notes(**a, empty), "{}");
}

TEST(Annotate, MultipleGroupsLaterOverwrites) {
    auto a = build(R"(config:
  annotations:
    - rules: [{host: "*"}]
      headers: [x-a, x-b]
    - rules: [{host: "h.com"}]
      headers: [X-B]
)");
    ASSERT_TRUE(a) << a.message();
    exchange ex = req("h.com");
    ex.request_headers.add("X-A", "1");
    ex.request_headers.add("X-B", "2");
    EXPECT_EQ(notes(**a, ex), R"({"header:X-A":"1","header:X-B":"2"})");
}

TEST(Annotate, ValidationErrors) {
    const std::string p = "transforms[0].config";
    struct {
        const char* yaml;
        std::string want;
    } cases[] = {
        {"config:\n", "c.yaml:2:1: " + p + ": annotate: at least one annotation group is required"},
        {"config:\n  annotations: []\n", "c.yaml:2:16: " + p + ".annotations: annotate: at least one annotation group is required"},
        {"config:\n  annotations:\n    - headers: [x]\n", "c.yaml:3:7: " + p + ".annotations[0]: at least one rule is required"},
        {"config:\n  annotations:\n    - rules: [{host: a}]\n",
         "c.yaml:3:7: " + p + ".annotations[0]: at least one header is required"},
        {"config:\n  annotations:\n    - rules: [{host: a}]\n      headers: [x]\n      hdrs: [y]\n",
         "c.yaml:5:7: " + p + ".annotations[0]: unknown key \"hdrs\" (allowed: rules, headers)"},
        {"config:\n  annotations:\n    - rules: [{method: GET}]\n      headers: [x]\n",
         "c.yaml:3:16: " + p + ".annotations[0].rules[0]: unknown key \"method\" (allowed: host, cidr, methods, paths)"},
    };
    for (const auto& c : cases) {
        auto a = build(c.yaml);
        ASSERT_FALSE(a) << c.yaml;
        EXPECT_EQ(a.message(), c.want) << c.yaml;
    }
}

}  // namespace
}  // namespace iron::transforms
