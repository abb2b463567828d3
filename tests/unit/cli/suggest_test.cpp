#include "cli/suggest.hpp"

#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include "cli/audit_view.hpp"

namespace iron::cli {
namespace {

std::string line(const std::string& host, const std::string& method = "GET", const std::string& extra = "") {
    return R"({"time":"2025-01-02T03:04:05Z","level":"INFO","msg":"request","audit":{"host":")" + host +
           R"(","method":")" + method + R"(","path":"/x","remote_addr":"127.0.0.1:1","sni":"","mode":"mitm","action":"allow","status_code":200,"duration_ms":1.5})" +
           extra + "}";
}

audit_view view(const std::string& text) {
    auto p = parse_audit_line(text);
    EXPECT_EQ(p.kind, line_kind::record) << text;
    return p.record.value_or(audit_view{});
}

TEST(AuditView, Fields) {
    const auto v = view(line("API.Example.com:8443", "POST",
                             R"(,"rejected_by":"allowlist","error":"host not in allowlist","tunnel":{"target":"api.example.com:8443"})"));
    EXPECT_EQ(v.time, "2025-01-02T03:04:05Z");
    EXPECT_EQ(v.method, "POST");
    EXPECT_EQ(v.status, 200);
    EXPECT_EQ(v.policy_host(), "api.example.com");
    EXPECT_EQ(v.rejected_by, "allowlist");
    EXPECT_EQ(v.tunnel_target, "api.example.com:8443");
    EXPECT_DOUBLE_EQ(v.duration_ms, 1.5);
    EXPECT_EQ(v.shown_action(), "allow");
}

TEST(AuditView, WarnAnnotationMakesAWarn) {
    const auto v = view(line("w.test", "GET",
                             R"(,"request_transforms":[{"name":"allowlist","action":"allow","duration_ms":0,"annotations":{"action":"warn"}}])"));
    EXPECT_TRUE(v.warned);
    EXPECT_EQ(v.shown_action(), "warn");
}

TEST(AuditView, KindsOfLines) {
    EXPECT_EQ(parse_audit_line("not json").kind, line_kind::malformed);
    EXPECT_EQ(parse_audit_line("[1,2]").kind, line_kind::malformed);
    EXPECT_EQ(parse_audit_line(R"({"level":"INFO","msg":"iron-proxy ready"})").kind, line_kind::other_log);
    EXPECT_EQ(parse_audit_line(R"({"audit":5})").kind, line_kind::malformed);
    EXPECT_EQ(parse_audit_line(line("a.b") + "\r\n").kind, line_kind::record);
}

YAML::Node allowlist_config(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    EXPECT_TRUE(root["transforms"].IsSequence()) << yaml;
    EXPECT_EQ(root["transforms"].size(), 1u);
    EXPECT_EQ(root["transforms"][0]["name"].as<std::string>(), "allowlist");
    return root["transforms"][0]["config"];
}

std::vector<std::string> strings(const YAML::Node& n) {
    std::vector<std::string> out;
    for (const auto& x : n) out.push_back(x.as<std::string>());
    return out;
}

TEST(Suggest, DomainsCidrsAndComments) {
    suggestion s;
    for (int i = 0; i < 3; ++i) s.add(view(line("api.example.com:443", i ? "GET" : "POST")));
    s.add(view(line("other.example", "CONNECT")));
    s.add(view(line("10.1.2.3:8080")));
    s.add(view(line("[2001:db8::1]:443")));
    const std::string y = s.yaml({}, "1 input");
    const YAML::Node c = allowlist_config(y);
    EXPECT_EQ(strings(c["domains"]), (std::vector<std::string>{"api.example.com", "other.example"}));
    EXPECT_EQ(strings(c["cidrs"]), (std::vector<std::string>{"10.1.2.3/32", "2001:db8::1/128"}));
    EXPECT_FALSE(c["groups"]);
    EXPECT_NE(y.find("# 3 requests: GET, POST"), std::string::npos) << y;
    EXPECT_NE(y.find("# 1 request: CONNECT"), std::string::npos) << y;
    EXPECT_NE(y.find("from 6 audit records"), std::string::npos) << y;
}

TEST(Suggest, MinCountLeavesRareHostsInAComment) {
    suggestion s;
    s.add(view(line("often.example")));
    s.add(view(line("often.example")));
    s.add(view(line("once.example")));
    suggest_options o;
    o.min_count = 2;
    const std::string y = s.yaml(o, "x");
    EXPECT_EQ(strings(allowlist_config(y)["domains"]), std::vector<std::string>{"often.example"});
    EXPECT_NE(y.find("# below -min-count 2: once.example (1)"), std::string::npos) << y;
}

TEST(Suggest, CollapseNeedsEnoughSiblings) {
    suggestion s;
    for (const char* h : {"a.cdn.example", "b.cdn.example", "c.cdn.example", "x.two.example", "y.two.example",
                          "cdn.example", "a.b.com"})
        s.add(view(line(h)));
    suggest_options o;
    o.collapse = true;
    const YAML::Node c = allowlist_config(s.yaml(o, "x"));
    EXPECT_EQ(strings(c["domains"]),
              (std::vector<std::string>{"*.cdn.example", "a.b.com", "x.two.example", "y.two.example"}));
    o.collapse_min = 2;  // two siblings now suffice; "*.com" (one label) is never made
    EXPECT_EQ(strings(allowlist_config(s.yaml(o, "x"))["domains"]),
              (std::vector<std::string>{"*.cdn.example", "*.two.example", "a.b.com"}));
}

TEST(Suggest, WholeGroupSeenBecomesTheGroup) {
    suggestion s;
    s.add(view(line("pypi.org")));
    s.add(view(line("files.pythonhosted.org")));
    s.add(view(line("registry.npmjs.org")));  // node: only 1 of its entries
    s.add(view(line("example.org")));
    const std::string y = s.yaml({}, "x");
    const YAML::Node c = allowlist_config(y);
    EXPECT_EQ(strings(c["groups"]), std::vector<std::string>{"pypi"});
    EXPECT_EQ(strings(c["domains"]), (std::vector<std::string>{"example.org", "registry.npmjs.org"}));
    EXPECT_NE(y.find("# partly seen: group node: 1 of 4 entries seen"), std::string::npos) << y;
}

// A host from the network can never add YAML structure: only DNS names and IP literals are written.
TEST(Suggest, HostileHostsStayOut) {
    suggestion s;
    s.add(view(line(R"(evil.com\"\n  - \"*)")));
    s.add(view(line("a b")));
    s.add(view(line("ok.example", "GET\\nx: y")));
    const std::string y = s.yaml({}, "x");
    const YAML::Node c = allowlist_config(y);
    EXPECT_EQ(strings(c["domains"]), std::vector<std::string>{"ok.example"});
    EXPECT_NE(y.find("# left out: 2 hosts"), std::string::npos) << y;
    EXPECT_EQ(y.find("x: y"), std::string::npos) << y;
}

TEST(Suggest, NothingSeenDeniesEverything) {
    suggestion s;
    const YAML::Node c = allowlist_config(s.yaml({}, "x"));
    EXPECT_TRUE(c["domains"].IsSequence());
    EXPECT_EQ(c["domains"].size(), 0u);
}

}  // namespace
}  // namespace iron::cli
