// Secret confinement: run every transform path with a distinctive real
// secret value and assert it never appears in a trace, an audit line, an error or a log line —
// while the upstream-bound request does carry it where the placeholder was.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "audit/record.hpp"
#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"
#include "transforms/registry.hpp"
#include "transforms/secrets_scan.hpp"

namespace iron {
namespace {

constexpr const char* k_canary = "CANARY-7f3e9a1c-REAL-SECRET";

// Redirects fd 2 (where the daemon log goes) into a temp file for the test's lifetime.
class stderr_capture {
public:
    stderr_capture() {
        std::fflush(stderr);
        path_ = "/tmp/iron-canary-stderr-" + std::to_string(getpid());
        FILE* f = std::fopen(path_.c_str(), "w");
        saved_ = dup(2);
        dup2(fileno(f), 2);
        std::fclose(f);
    }
    ~stderr_capture() { restore(); std::remove(path_.c_str()); }
    std::string text() {
        restore();
        std::ifstream in(path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        dup2(saved_, 2);
        close(saved_);
        saved_ = -1;
    }
    std::string path_;
    int saved_ = -1;
};

std::vector<config::transform_entry> entries_from(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    std::vector<config::transform_entry> out;
    for (std::size_t i = 0; i < root["transforms"].size(); ++i) {
        const YAML::Node t = root["transforms"][i];
        out.push_back({t["name"].as<std::string>(), t["config"], "f.yaml:" + std::to_string(i + 2) + ":3"});
    }
    return out;
}

pipeline::exchange req(const std::string& host, const std::string& method, const std::string& path) {
    pipeline::exchange ex;
    ex.method = method;
    ex.host = host;
    ex.policy_host = core::normalize_host(core::strip_port(host));
    ex.path = path;
    ex.raw_path = path;
    ex.request_headers.add("Host", host);
    return ex;
}

TEST(SecretCanary, NoTransformPathLeaksTheValue) {
    setenv("IRON_CANARY_SECRET", k_canary, 1);
    setenv("IRON_CANARY_JSON", (std::string(R"({"k":")") + k_canary + R"("})").c_str(), 1);
    setenv("IRON_CANARY_NOT_JSON", k_canary, 1);  // json_key error path must not echo the value
    setenv("IRON_CANARY_CRLF", (std::string(k_canary) + "\r\n").c_str(), 1);
    unsetenv("IRON_CANARY_MISSING");
    const std::string file = "/tmp/iron-canary-file-" + std::to_string(getpid());
    std::ofstream(file) << k_canary << "\n";

    stderr_capture log;
    auto built = transforms::build_pipeline(entries_from(R"(transforms:
  - name: annotate
    config:
      annotations:
        - rules: [{host: "*"}]
          headers: [authorization, x-api-key]
  - name: body_capture
    config:
      rules: [{host: "*"}]
  - name: secrets
    config:
      secrets:
        - source: {type: env, var: IRON_CANARY_SECRET}
          rules: [{host: api.bound.com}]
          replace: {proxy_value: ptok, match_query: true, match_path: true, match_body: true}
        - source: {type: env, var: IRON_CANARY_JSON, json_key: k}
          rules: [{host: inject.bound.com}]
          inject: {header: Authorization, formatter: 'Basic {{ base64 "u:" .Value }}'}
        - source: {type: file, path: )" + file + R"(}
          rules: [{host: inject.bound.com}]
          inject: {query_param: key, formatter: "{{ .Value }}"}
        - source: {type: env, var: IRON_CANARY_NOT_JSON, json_key: k}
          rules: [{host: broken.bound.com}]
          replace: {proxy_value: ptok, require: true}
        - source: {type: env, var: IRON_CANARY_CRLF}
          rules: [{host: crlf.bound.com}]
          replace: {proxy_value: ptok}
        - source: {type: env, var: IRON_CANARY_MISSING}
          rules: [{host: missing.bound.com}]
          replace: {proxy_value: ptok, require: true}
        - source: {type: env, var: IRON_CANARY_SECRET}
          rules: [{host: required.bound.com}]
          replace: {proxy_value: ptok, require: true}
  - name: header_allowlist
    config:
      headers: [authorization, x-api-key, content-type]
)"),
                                          "f.yaml");
    ASSERT_TRUE(built) << built.message();
    const auto& pl = **built;

    std::vector<std::string> lines;
    std::string upstream_bound;  // what would go upstream, concatenated
    for (const char* host : {"api.bound.com", "inject.bound.com", "broken.bound.com", "crlf.bound.com",
                             "missing.bound.com", "required.bound.com", "unbound.com"}) {
        for (bool big : {false, true}) {
            pipeline::exchange ex = req(host, "POST", "/v1/ptok/x");
            ex.raw_query = "a=ptok&b=p%74ok";
            ex.request_headers.add("Authorization", "Basic " + transforms::scan::base64_encode("user:ptok"));
            ex.request_headers.add("x-api-key", "ptok");
            ex.request_headers.add("X-Dropped", "ptok");
            ex.request_body.present = pl.wants_request_body(ex);
            ex.request_body.complete = !big;
            ex.request_body.data = R"({"k":"ptok"})";

            audit::record rec;
            rec.host = ex.host;
            rec.method = ex.method;
            rec.path = ex.path;  // taken before the pipeline, as the HTTP layer does
            auto outcome = pl.run_request(ex, rec.request_transforms);
            rec.error = outcome.outcome.error;
            rec.action = outcome.outcome.what == pipeline::verdict::kind::next ? audit::action::allow
                         : outcome.outcome.what == pipeline::verdict::kind::error ? audit::action::error
                                                                                  : audit::action::reject;
            if (!outcome.decided_by.empty() && rec.action == audit::action::reject) rec.rejected_by = outcome.decided_by;
            rec.body_capture = ex.body_capture;
            lines.push_back(audit::serialize(rec));
            lines.push_back(outcome.outcome.body);
            for (const auto& h : outcome.outcome.headers.entries()) lines.push_back(h.value);

            if (outcome.outcome.what == pipeline::verdict::kind::next) {
                for (const auto& h : ex.request_headers.entries()) upstream_bound += h.value + "\n";
                upstream_bound += ex.raw_query + ex.raw_path + ex.request_body.data;
            }
        }
    }
    pl.refresh();  // refresh logs (value changes / failures) must not leak either
    std::string logged = log.text();
    std::remove(file.c_str());

    for (const auto& l : lines) EXPECT_EQ(l.find(k_canary), std::string::npos) << l;
    EXPECT_EQ(logged.find(k_canary), std::string::npos) << logged;
    // Sanity: the paths really ran and the secret did reach the upstream-bound request.
    EXPECT_NE(upstream_bound.find(k_canary), std::string::npos);
    EXPECT_NE(upstream_bound.find(transforms::scan::base64_encode(std::string("u:") + k_canary)), std::string::npos);
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    EXPECT_NE(all.find(R"("swapped":[{"secret":"IRON_CANARY_SECRET")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("injected":[{"secret":"IRON_CANARY_JSON")"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("reject_reason":"secret_unavailable")"), std::string::npos) << all;
    EXPECT_NE(all.find("\"body_truncated\":true"), std::string::npos) << all;
    EXPECT_NE(all.find("\"error\":\"transform secrets request: swapping secret"), std::string::npos) << all;
    EXPECT_NE(all.find(R"("header:Authorization":"Basic dXNlcjpwdG9r")"), std::string::npos) << all;  // placeholder

    unsetenv("IRON_CANARY_SECRET");
    unsetenv("IRON_CANARY_JSON");
    unsetenv("IRON_CANARY_NOT_JSON");
    unsetenv("IRON_CANARY_CRLF");
}

TEST(SecretCanary, BodyCaptureAfterBodySwappingSecretsIsRefused) {
    auto p = transforms::build_pipeline(entries_from(R"(transforms:
  - name: secrets
    config:
      secrets:
        - source: {type: env, var: X}
          rules: [{host: "*"}]
          replace: {proxy_value: ptok, match_body: true}
  - name: body_capture
    config:
      rules: [{host: "*"}]
)"),
                                      "f.yaml");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.message(), "f.yaml:3:3: body_capture must be placed before secrets with match_body: after it, the "
                           "captured body would contain the real secret");
    // Without match_body the order does not matter.
    auto ok = transforms::build_pipeline(entries_from(R"(transforms:
  - name: secrets
    config:
      secrets:
        - source: {type: env, var: X}
          rules: [{host: "*"}]
          replace: {proxy_value: ptok}
  - name: body_capture
    config:
      rules: [{host: "*"}]
)"),
                                       "f.yaml");
    EXPECT_TRUE(ok) << ok.message();
}

}  // namespace
}  // namespace iron
