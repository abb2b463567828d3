// The body_capture transform (following the Go proxy's own unit-test cases) and its audit record
// group.
#include "transforms/body_capture.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "audit/record.hpp"
#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::transforms {
namespace {

using pipeline::exchange;
using pipeline::verdict;

result<std::unique_ptr<body_capture>> build(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return body_capture::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

exchange req(const std::string& host, const std::string& body, bool complete = true,
             const std::string& method = "POST") {
    exchange ex;
    ex.method = method;
    ex.host = host;
    ex.policy_host = core::normalize_host(core::strip_port(host));
    ex.path = "/v1/x";
    ex.request_body.present = true;
    ex.request_body.complete = complete;
    ex.request_body.data = body;
    return ex;
}

std::string run(const body_capture& b, exchange& ex) {
    audit::trace t;
    ex.current_trace = &t;
    EXPECT_EQ(b.on_request(ex).what, verdict::kind::next);
    ex.current_trace = nullptr;
    return boost::json::serialize(t.annotations);
}

TEST(BodyCapture, CapturesIntoExchange) {
    auto b = build("config:\n  rules: [{host: api.x.com}]\n");
    ASSERT_TRUE(b) << b.message();
    EXPECT_EQ((*b)->name(), "body_capture");
    EXPECT_EQ((*b)->max_bytes(), 16384);
    exchange ex = req("api.x.com", R"({"prompt":"hi"})");
    EXPECT_TRUE((*b)->wants_request_body(ex));
    EXPECT_EQ(run(**b, ex), R"({"captured_bytes":15,"truncated":false})");
    ASSERT_TRUE(ex.body_capture);
    EXPECT_EQ(boost::json::serialize(*ex.body_capture),
              R"({"request_body":"{\"prompt\":\"hi\"}","request_body_truncated":false})");
    EXPECT_FALSE(ex.request_body.modified);
}

TEST(BodyCapture, NoMatchNoCapture) {
    auto b = build("config:\n  rules: [{host: api.x.com, methods: [POST]}]\n");
    exchange other = req("other.com", "data");
    EXPECT_FALSE((*b)->wants_request_body(other));
    EXPECT_EQ(run(**b, other), "{}");
    EXPECT_FALSE(other.body_capture);
    exchange get = req("api.x.com", "data", true, "GET");
    EXPECT_FALSE((*b)->wants_request_body(get));
    EXPECT_EQ(run(**b, get), "{}");
}

TEST(BodyCapture, OverCapTruncatedWithUtf8Trim) {
    auto b = build("config:\n  max_request_body_bytes: 5\n  rules: [{host: '*'}]\n");
    ASSERT_TRUE(b) << b.message();
    // "abcd" + "é" (2 bytes): a cut at 5 would split "é"; the partial byte is dropped.
    exchange ex = req("h", "abcd\xC3\xA9xyz");
    EXPECT_EQ(run(**b, ex), R"({"captured_bytes":4,"truncated":true})");
    EXPECT_EQ((*ex.body_capture)["request_body"].as_string(), "abcd");
    EXPECT_EQ((*ex.body_capture)["request_body_truncated"].as_bool(), true);

    // Cut right after a complete sequence: nothing dropped.
    exchange whole = req("h", "abc\xC3\xA9zz");
    EXPECT_EQ(run(**b, whole), R"({"captured_bytes":5,"truncated":true})");

    EXPECT_EQ(utf8_prefix("ab\xE2\x82\xAC", 4), "ab");          // 3-byte euro sign cut
    EXPECT_EQ(utf8_prefix("ab\xF0\x9F\x98\x80", 5), "ab");      // 4-byte emoji cut
    EXPECT_EQ(utf8_prefix("ab\xF0\x9F\x98\x80", 6), "ab\xF0\x9F\x98\x80");
    EXPECT_EQ(utf8_prefix("short", 100), "short");
}

TEST(BodyCapture, PrefixFromGlobalCapIsTruncated) {
    auto b = build("config:\n  rules: [{host: '*'}]\n");
    exchange ex = req("h", "partial", /*complete=*/false);
    EXPECT_EQ(run(**b, ex), R"({"captured_bytes":7,"truncated":true})");
}

TEST(BodyCapture, EmptyOrAbsentBodyIgnored) {
    auto b = build("config:\n  rules: [{host: '*'}]\n");
    exchange empty = req("h", "");
    EXPECT_EQ(run(**b, empty), "{}");
    EXPECT_FALSE(empty.body_capture);
    exchange absent = req("h", "x");
    absent.request_body.present = false;
    EXPECT_EQ(run(**b, absent), "{}");
}

TEST(BodyCapture, SingleCaptureWithMultipleRules) {
    auto b = build("config:\n  max_request_body_bytes: -3\n  rules: [{host: '*'}, {host: h}, {cidr: 10.0.0.0/8}]\n");
    ASSERT_TRUE(b) << b.message();
    EXPECT_EQ((*b)->max_bytes(), 16384);  // <= 0 means the default
    exchange ex = req("h", "once");
    EXPECT_EQ(run(**b, ex), R"({"captured_bytes":4,"truncated":false})");
}

TEST(BodyCapture, Validation) {
    const std::string p = "transforms[0].config";
    for (auto [yaml, want] : {
             std::pair<std::string, std::string>{"config:\n", "c.yaml:2:1: " + p +
                                                                  ": body_capture: at least one rule is required "
                                                                  "(without rules nothing is captured)"},
             {"config:\n  rules: []\n",
              "c.yaml:2:10: " + p + ": body_capture: at least one rule is required (without rules nothing is captured)"},
             {"config:\n  max_bytes: 3\n  rules: [{host: a}]\n",
              "c.yaml:2:3: " + p + ": unknown key \"max_bytes\" (allowed: max_request_body_bytes, rules)"},
             {"config:\n  max_request_body_bytes: big\n  rules: [{host: a}]\n",
              "c.yaml:2:27: " + p + ".max_request_body_bytes: "},
         }) {
        auto b = build(yaml);
        ASSERT_FALSE(b) << yaml;
        EXPECT_EQ(b.message().rfind(want, 0), 0u) << b.message();
    }
}

TEST(BodyCapture, AuditRecordGroupAfterResponseTransforms) {
    audit::record r;
    r.request_transforms.push_back({"body_capture", audit::trace_action::allow, 0.01, "", {}});
    r.response_transforms.push_back({"x", audit::trace_action::allow, 0.01, "", {}});
    std::string without = audit::serialize(r);
    EXPECT_EQ(without.find("body_capture\":{"), std::string::npos);
    r.body_capture = boost::json::object{{"request_body", "hello"}, {"request_body_truncated", false}};
    std::string line = audit::serialize(r);
    auto resp = line.find("\"response_transforms\"");
    auto cap = line.find(R"("body_capture":{"request_body":"hello","request_body_truncated":false})");
    ASSERT_NE(cap, std::string::npos) << line;
    EXPECT_LT(resp, cap);
    EXPECT_EQ(line.back(), '}');
}

}  // namespace
}  // namespace iron::transforms
