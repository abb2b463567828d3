// The secrets transform (following the Go proxy's own unit-test cases): all three config shapes,
// replace and inject modes, host scoping, require, unavailable secrets, annotations and strict
// parsing.
#include "transforms/secrets.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <boost/json/serialize.hpp>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"
#include "support/secrets_fixture.hpp"

namespace iron::transforms {
namespace {

using pipeline::exchange;
using pipeline::verdict;

constexpr const char* k_real = "sk-REAL-0123456789";
constexpr const char* k_other_real = "other-REAL-secret";

class Secrets : public test::secrets_fixture {
protected:
    Secrets() : secrets_fixture("transforms[1].config") {}
    void SetUp() override {
        set_env("IRON_T_OPENAI", k_real);
        set_env("IRON_T_OTHER", k_other_real);
        unsetenv("IRON_T_MISSING");
    }
    void TearDown() override {
        secrets_fixture::TearDown();
        for (const auto& f : files_) std::remove(f.c_str());
    }

    std::string write(const std::string& text) {
        std::string path = "/tmp/iron-secrets-transform-" + std::to_string(getpid()) + "-" +
                           std::to_string(files_.size());
        std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
        files_.push_back(path);
        return path;
    }
    std::vector<std::string> files_;
};

exchange req(const std::string& host, const std::string& method = "GET", const std::string& path = "/") {
    exchange ex;
    ex.method = method;
    ex.host = host;
    ex.policy_host = core::normalize_host(core::strip_port(host));
    ex.path = path;
    ex.raw_path = path;
    ex.request_headers.add("Host", host);
    return ex;
}

// Runs the request hook with a trace attached; returns the trace.
struct run_result {
    verdict v;
    audit::trace trace;
    std::string notes() const { return boost::json::serialize(trace.annotations); }
};
run_result run(const secrets_transform& t, exchange& ex) {
    run_result r;
    ex.current_trace = &r.trace;
    r.v = t.on_request(ex);
    ex.current_trace = nullptr;
    return r;
}

std::string header(const exchange& ex, std::string_view name) {
    auto v = ex.request_headers.get(name);
    return v ? std::string(*v) : "<absent>";
}

// --- config shapes ------------------------------------------------------------------------------

const char* const k_seed = R"(config:
  source: env
  secrets:
    - var: IRON_T_OPENAI
      proxy_value: "proxy-openai-abc123"
      match_headers: ["Authorization"]
      hosts:
        - name: "httpbin.org"
    - var: IRON_T_OTHER
      proxy_value: "proxy-internal-tok"
      match_headers: []
      hosts:
        - name: "httpbin.org"
)";

TEST_F(Secrets, SeedDemoHeaderSwap) {
    auto t = must_build(k_seed);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->name(), "secrets");
    EXPECT_FALSE(t->applies_to_connect());
    exchange ex = req("httpbin.org", "GET", "/headers");
    ex.request_headers.add("Authorization", "Bearer proxy-openai-abc123");
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_EQ(header(ex, "Authorization"), std::string("Bearer ") + k_real);
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:Authorization"]}]})");
}

TEST_F(Secrets, SeedDemoCustomHeaderSwapAllHeaders) {
    auto t = must_build(k_seed);
    exchange ex = req("httpbin.org", "GET", "/headers");
    ex.request_headers.add("X-Internal", "proxy-internal-tok");
    auto r = run(*t, ex);
    EXPECT_EQ(header(ex, "X-Internal"), k_other_real);
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OTHER","locations":["header:X-Internal"]}]})");
}

TEST_F(Secrets, SeedAlwaysScansQueryInPlace) {
    auto t = must_build(k_seed);
    exchange ex = req("httpbin.org", "GET", "/get");
    ex.raw_query = "token=proxy-openai-abc123&q=hello";
    auto r = run(*t, ex);
    EXPECT_EQ(ex.raw_query, std::string("token=") + k_real + "&q=hello");
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["query:token"]}]})");
}

TEST_F(Secrets, UnboundHostLeftUntouched) {
    auto t = must_build(k_seed);
    exchange ex = req("example.com");
    ex.request_headers.add("Authorization", "Bearer proxy-openai-abc123");
    ex.raw_query = "token=proxy-openai-abc123";
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_EQ(header(ex, "Authorization"), "Bearer proxy-openai-abc123");
    EXPECT_EQ(ex.raw_query, "token=proxy-openai-abc123");
    EXPECT_TRUE(r.trace.annotations.empty());
}

TEST_F(Secrets, HostWithPortAndCidrHosts) {
    auto t = must_build(R"(config:
  source: env
  secrets:
    - var: IRON_T_OPENAI
      proxy_value: tok
      hosts: [{name: "*.example.com"}, {cidr: 10.0.0.0/8}]
)");
    ASSERT_TRUE(t);
    for (const char* host : {"example.com", "a.b.example.com:8443", "10.1.2.3", "10.1.2.3:80"}) {
        exchange ex = req(host);
        ex.request_headers.add("X-Key", "tok");
        run(*t, ex);
        EXPECT_EQ(header(ex, "X-Key"), k_real) << host;
    }
    exchange ex = req("notexample.com");
    ex.request_headers.add("X-Key", "tok");
    run(*t, ex);
    EXPECT_EQ(header(ex, "X-Key"), "tok");
}

const char* const k_current = R"(config:
  secrets:
    - source: {type: env, var: IRON_T_OPENAI}
      rules: [{host: api.openai.com}]
      replace:
        proxy_value: ptok
)";

TEST_F(Secrets, CurrentShapeQueryOnlyWithMatchQuery) {
    auto t = must_build(k_current);
    ASSERT_TRUE(t);
    exchange ex = req("api.openai.com");
    ex.raw_query = "key=ptok";
    ex.request_headers.add("Authorization", "Bearer ptok");
    auto r = run(*t, ex);
    EXPECT_EQ(ex.raw_query, "key=ptok");  // match_query defaults to false
    EXPECT_EQ(header(ex, "Authorization"), std::string("Bearer ") + k_real);

    auto q = must_build(std::string(k_current) + "        match_query: true\n");
    exchange ex2 = req("api.openai.com");
    ex2.raw_query = "key=ptok";
    r = run(*q, ex2);
    EXPECT_EQ(ex2.raw_query, std::string("key=") + k_real);
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["query:key"]}]})");
}

TEST_F(Secrets, LegacyTopLevelForm) {
    auto t = must_build(R"(config:
  secrets:
    - source: {type: env, var: IRON_T_OPENAI}
      rules: [{host: "*"}]
      proxy_value: ptok
      match_headers: [x-api-key]
      require: true
)");
    ASSERT_TRUE(t);
    exchange ex = req("any.host");
    ex.request_headers.add("X-Api-Key", "ptok");
    ex.raw_query = "k=ptok";
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_EQ(header(ex, "x-api-key"), k_real);
    EXPECT_EQ(ex.raw_query, "k=ptok");  // no match_query in the legacy form
    // The user's spelling is used on the wire and in the location (#127).
    EXPECT_EQ(ex.request_headers.entries()[1].name, "x-api-key");
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:x-api-key"]}]})");
}

// --- replace mode details -----------------------------------------------------------------------

std::string replace_cfg(const std::string& extra, const std::string& rules = "[{host: \"*\"}]") {
    return "config:\n  secrets:\n    - source: {type: env, var: IRON_T_OPENAI}\n      rules: " + rules +
           "\n      replace:\n        proxy_value: ptok\n" + extra;
}

TEST_F(Secrets, MatchHeadersFilterAndEmptyMeansAll) {
    auto listed = must_build(replace_cfg("        match_headers: [Authorization]\n"));
    exchange ex = req("h");
    ex.request_headers.add("Authorization", "ptok");
    ex.request_headers.add("X-Other", "ptok");
    run(*listed, ex);
    EXPECT_EQ(header(ex, "Authorization"), k_real);
    EXPECT_EQ(header(ex, "X-Other"), "ptok");

    auto all = must_build(replace_cfg("        match_headers: []\n"));
    exchange ex2 = req("h");
    ex2.request_headers.add("Authorization", "ptok");
    ex2.request_headers.add("X-Other", "a ptok b ptok");
    auto r = run(*all, ex2);
    EXPECT_EQ(header(ex2, "X-Other"), std::string("a ") + k_real + " b " + k_real);
    EXPECT_EQ(r.notes(),
              R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:Authorization","header:X-Other"]}]})");
}

TEST_F(Secrets, MatchHeadersNoneDisablesHeaderScanning) {
    auto t = must_build(replace_cfg("        match_headers: none\n        match_query: true\n"));
    ASSERT_TRUE(t);
    exchange ex = req("h");
    ex.request_headers.add("Authorization", "ptok");
    ex.raw_query = "a=ptok";
    run(*t, ex);
    EXPECT_EQ(header(ex, "Authorization"), "ptok");
    EXPECT_EQ(ex.raw_query, std::string("a=") + k_real);
}

TEST_F(Secrets, RegexHeadersCaseInsensitiveNoDoubleSwap) {
    // Overlapping patterns process each header once; regex hits keep the header's own name.
    auto t = must_build(replace_cfg("        match_headers: ['/^x-.*-key$/', '/API/', X-Api-Key]\n"));
    ASSERT_TRUE(t);
    exchange ex = req("h");
    ex.request_headers.add("x-api-key", "ptok");
    ex.request_headers.add("X-Other-Key", "ptok");
    ex.request_headers.add("X-Unrelated", "ptok");
    auto r = run(*t, ex);
    EXPECT_EQ(header(ex, "X-Api-Key"), k_real);
    EXPECT_EQ(header(ex, "X-Other-Key"), k_real);
    EXPECT_EQ(header(ex, "X-Unrelated"), "ptok");
    EXPECT_EQ(ex.request_headers.entries()[1].name, "x-api-key");  // regex keeps existing casing
    EXPECT_EQ(r.notes(),
              R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:X-Api-Key","header:X-Other-Key"]}]})");
}

TEST_F(Secrets, RegexWithRequire) {
    auto t = must_build(replace_cfg("        match_headers: ['/-key$/']\n        require: true\n"));
    exchange ok = req("h");
    ok.request_headers.add("X-Api-Key", "ptok");
    EXPECT_EQ(run(*t, ok).v.what, verdict::kind::next);
    exchange bad = req("h");
    bad.request_headers.add("Authorization", "ptok");  // not a matched header
    EXPECT_EQ(run(*t, bad).v.what, verdict::kind::reject);
}

TEST_F(Secrets, LiteralHeaderUserCasingOnWire) {
    auto t = must_build(replace_cfg("        match_headers: [X-API-KEY]\n"));
    exchange ex = req("h");
    ex.request_headers.add("x-api-key", "ptok");
    ex.request_headers.add("x-api-key", "second ptok");
    auto r = run(*t, ex);
    ASSERT_EQ(ex.request_headers.size(), 3u);
    EXPECT_EQ(ex.request_headers.entries()[1].name, "X-API-KEY");
    EXPECT_EQ(ex.request_headers.entries()[2].name, "X-API-KEY");
    EXPECT_EQ(ex.request_headers.entries()[2].value, std::string("second ") + k_real);
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:X-API-KEY"]}]})");
}

TEST_F(Secrets, BasicAuthSwapNoMatchAndNonAuthorization) {
    auto t = must_build(replace_cfg(""));
    // user:ptok -> user:<real>, re-encoded.
    exchange ex = req("h");
    ex.request_headers.add("authorization", "Basic dXNlcjpwdG9r");  // "user:ptok"
    auto r = run(*t, ex);
    EXPECT_EQ(header(ex, "Authorization"), "Basic dXNlcjpzay1SRUFMLTAxMjM0NTY3ODk=");  // "user:sk-REAL-0123456789"
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:Authorization"]}]})");

    // Valid base64 without the token: untouched, and the raw value is not searched.
    exchange none = req("h");
    none.request_headers.add("Authorization", "Basic dXNlcjpwYXNz");  // "user:pass"
    EXPECT_TRUE(run(*t, none).trace.annotations.empty());
    EXPECT_EQ(header(none, "Authorization"), "Basic dXNlcjpwYXNz");

    // Basic handling applies only to Authorization; elsewhere the raw value is searched.
    exchange other = req("h");
    other.request_headers.add("X-Creds", "Basic dXNlcjpwdG9r");
    run(*t, other);
    EXPECT_EQ(header(other, "X-Creds"), "Basic dXNlcjpwdG9r");

    // Not base64 after "Basic ": searched raw.
    exchange raw = req("h");
    raw.request_headers.add("Authorization", "Basic ptok!");
    run(*t, raw);
    EXPECT_EQ(header(raw, "Authorization"), std::string("Basic ") + k_real + "!");
}

TEST_F(Secrets, QueryReplacedInPlaceEncodingPreserved) {
    auto t = must_build(replace_cfg("        match_query: true\n"));
    exchange ex = req("h");
    // Order kept, other escapes kept (%20, '+', %2F, a flag without '='), empty components kept;
    // the placeholder found raw and percent-encoded.
    ex.raw_query = "z=1&b=a%20b+c&tok=ptok&flag&&enc=p%74ok%2Fx&last=x%2Fy";
    auto r = run(*t, ex);
    EXPECT_EQ(ex.raw_query, std::string("z=1&b=a%20b+c&tok=") + k_real + "&flag&&enc=" + k_real +
                                "%2Fx&last=x%2Fy");
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["query:tok","query:enc"]}]})");
}

TEST_F(Secrets, QuerySecretIsPercentEncoded) {
    setenv("IRON_T_OPENAI", "a b&c=d/e+f", 1);
    auto t = must_build(replace_cfg("        match_query: true\n"));
    exchange ex = req("h");
    ex.raw_query = "x=1&k=ptok";
    run(*t, ex);
    EXPECT_EQ(ex.raw_query, "x=1&k=a%20b%26c%3Dd%2Fe%2Bf");
}

TEST_F(Secrets, BodySwapOnlyWhenComplete) {
    auto t = must_build(replace_cfg("        match_body: true\n"));
    exchange ex = req("h", "POST");
    EXPECT_TRUE(t->wants_request_body(ex));
    ex.request_body.present = true;
    ex.request_body.data = R"({"key":"ptok","again":"ptok"})";
    auto r = run(*t, ex);
    EXPECT_EQ(ex.request_body.data, std::string(R"({"key":")") + k_real + R"(","again":")" + k_real + R"("})");
    EXPECT_TRUE(ex.request_body.modified);
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["body"]}]})");

    // Over the cap: only a prefix was buffered — never rewritten, annotated instead.
    exchange big = req("h", "POST");
    big.request_body.present = true;
    big.request_body.complete = false;
    big.request_body.data = std::string(1000, 'x') + "ptok";
    r = run(*t, big);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_FALSE(big.request_body.modified);
    EXPECT_EQ(big.request_body.data, std::string(1000, 'x') + "ptok");
    EXPECT_EQ(r.notes(), R"({"body_truncated":true})");
}

TEST_F(Secrets, WantsBodyOnlyForMatchingEntriesWithMatchBody) {
    auto t = must_build(replace_cfg("        match_body: true\n", "[{host: api.x.com, methods: [POST]}]"));
    EXPECT_TRUE(t->wants_request_body(req("api.x.com", "POST")));
    EXPECT_FALSE(t->wants_request_body(req("api.x.com", "GET")));
    EXPECT_FALSE(t->wants_request_body(req("other.com", "POST")));
    EXPECT_TRUE(t->rewrites_body());
    auto no_body = must_build(replace_cfg(""));
    EXPECT_FALSE(no_body->wants_request_body(req("x", "POST")));
    EXPECT_FALSE(no_body->rewrites_body());
}

TEST_F(Secrets, MatchPathRawAndDecoded) {
    auto t = must_build(replace_cfg("        match_path: true\n"));
    exchange ex = req("h", "GET", "/v1/ptok/x y");
    ex.raw_path = "/v1/p%74ok/x%20y%2Fz";
    ex.path = "/v1/ptok/x y/z";
    auto r = run(*t, ex);
    EXPECT_EQ(ex.path, std::string("/v1/") + k_real + "/x y/z");
    EXPECT_EQ(ex.raw_path, std::string("/v1/") + k_real + "/x%20y%2Fz");  // other escapes kept
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["path"]}]})");

    // Default off.
    auto off = must_build(replace_cfg(""));
    exchange ex2 = req("h", "GET", "/v1/ptok");
    run(*off, ex2);
    EXPECT_EQ(ex2.raw_path, "/v1/ptok");

    // No match: untouched, no annotation.
    exchange ex3 = req("h", "GET", "/v1/other");
    EXPECT_TRUE(run(*t, ex3).trace.annotations.empty());
}

TEST_F(Secrets, MatchPathRequire) {
    auto t = must_build(replace_cfg("        match_path: true\n        match_headers: none\n        require: true\n"));
    exchange ok = req("h", "GET", "/ptok");
    EXPECT_EQ(run(*t, ok).v.what, verdict::kind::next);
    exchange bad = req("h", "GET", "/nothing");
    EXPECT_EQ(run(*t, bad).v.what, verdict::kind::reject);
}

TEST_F(Secrets, RequireRejectsWithoutTokenAndContinuesWithIt) {
    auto t = must_build(replace_cfg("        require: true\n", "[{host: api.x.com}]"));
    exchange without = req("api.x.com");
    without.request_headers.add("Authorization", "Bearer sk-someone-elses-key");
    auto r = run(*t, without);
    EXPECT_EQ(r.v.what, verdict::kind::reject);
    EXPECT_EQ(r.v.status, 403);
    EXPECT_EQ(r.notes(), R"({"rejected":"IRON_T_OPENAI"})");

    exchange with = req("api.x.com");
    with.request_headers.add("Authorization", "Bearer ptok");
    EXPECT_EQ(run(*t, with).v.what, verdict::kind::next);

    exchange no_headers = req("api.x.com");
    EXPECT_EQ(run(*t, no_headers).v.what, verdict::kind::reject);

    exchange other_host = req("elsewhere.com");  // require only binds the secret's hosts
    EXPECT_EQ(run(*t, other_host).v.what, verdict::kind::next);

    auto dflt = must_build(replace_cfg("", "[{host: api.x.com}]"));  // require defaults to false
    exchange plain = req("api.x.com");
    EXPECT_EQ(run(*dflt, plain).v.what, verdict::kind::next);
}

TEST_F(Secrets, RequireSatisfiedByBody) {
    auto t = must_build(replace_cfg("        match_body: true\n        require: true\n"));
    exchange ex = req("h", "POST");
    ex.request_body.present = true;
    ex.request_body.data = "ptok";
    EXPECT_EQ(run(*t, ex).v.what, verdict::kind::next);
    EXPECT_EQ(ex.request_body.data, k_real);
}

TEST_F(Secrets, MethodAndPathFiltering) {
    auto t = must_build(replace_cfg("", "[{host: api.x.com, methods: [post], paths: [\"/v1/*\"]}]"));
    auto swapped = [&](const char* method, const char* path) {
        exchange ex = req("api.x.com", method, path);
        ex.request_headers.add("X-Key", "ptok");
        run(*t, ex);
        return header(ex, "X-Key") == k_real;
    };
    EXPECT_TRUE(swapped("POST", "/v1/chat"));
    EXPECT_TRUE(swapped("POST", "/v1"));
    EXPECT_FALSE(swapped("GET", "/v1/chat"));
    EXPECT_FALSE(swapped("POST", "/v2/chat"));
}

TEST_F(Secrets, MultipleSecretsAndMixedSources) {
    std::string path = write(std::string(k_other_real) + "\n");
    auto t = must_build(R"(config:
  secrets:
    - source: {type: env, var: IRON_T_OPENAI}
      rules: [{host: "*"}]
      replace: {proxy_value: tok-a}
    - source: {type: file, path: )" + path + R"(, name: other_file}
      rules: [{host: "*"}]
      replace: {proxy_value: tok-b, match_query: true}
)");
    ASSERT_TRUE(t);
    exchange ex = req("h");
    ex.request_headers.add("A", "tok-a");
    ex.request_headers.add("B", "tok-b");
    ex.raw_query = "b=tok-b";
    auto r = run(*t, ex);
    EXPECT_EQ(header(ex, "A"), k_real);
    EXPECT_EQ(header(ex, "B"), k_other_real);
    EXPECT_EQ(ex.raw_query, std::string("b=") + k_other_real);
    EXPECT_EQ(r.notes(), R"({"swapped":[{"secret":"IRON_T_OPENAI","locations":["header:A"]},)"
                         R"({"secret":"other_file","locations":["header:B","query:b"]}]})");
}

TEST_F(Secrets, FileRotationSeenAfterRefresh) {
    std::string path = write("first-secret\n");
    auto t = must_build("config:\n  secrets:\n    - source: {type: file, path: " + path +
                        "}\n      rules: [{host: \"*\"}]\n      replace: {proxy_value: ptok}\n");
    exchange a = req("h");
    a.request_headers.add("X", "ptok");
    run(*t, a);
    EXPECT_EQ(header(a, "X"), "first-secret");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "second-secret\n";
    t->refresh();
    exchange b = req("h");
    b.request_headers.add("X", "ptok");
    run(*t, b);
    EXPECT_EQ(header(b, "X"), "second-secret");
}

// --- inject mode --------------------------------------------------------------------------------

std::string inject_cfg(const std::string& block, const std::string& rules = "[{host: api.x.com}]") {
    return "config:\n  secrets:\n    - source: {type: env, var: IRON_T_OPENAI}\n      rules: " + rules +
           "\n      inject:\n" + block;
}

TEST_F(Secrets, InjectHeaderWithFormatters) {
    auto bearer = must_build(inject_cfg("        header: Authorization\n        formatter: \"Bearer {{ .Value }}\"\n"));
    ASSERT_TRUE(bearer);
    exchange ex = req("api.x.com");
    auto r = run(*bearer, ex);
    EXPECT_EQ(header(ex, "Authorization"), std::string("Bearer ") + k_real);
    EXPECT_EQ(r.notes(), R"({"injected":[{"secret":"IRON_T_OPENAI","locations":["header:Authorization"]}]})");

    auto basic = must_build(
        inject_cfg("        header: Authorization\n        formatter: 'Basic {{ base64 \"x-credential:\" .Value }}'\n"));
    ASSERT_TRUE(basic);
    exchange ex2 = req("api.x.com");
    run(*basic, ex2);
    // base64("x-credential:sk-REAL-0123456789")
    EXPECT_EQ(header(ex2, "Authorization"), "Basic eC1jcmVkZW50aWFsOnNrLVJFQUwtMDEyMzQ1Njc4OQ==");

    auto none = must_build(inject_cfg("        header: X-Key\n"));  // no formatter: raw value
    exchange ex3 = req("api.x.com");
    run(*none, ex3);
    EXPECT_EQ(header(ex3, "X-Key"), k_real);
}

TEST_F(Secrets, InjectOverwritesAnyCasingWithExactSpelling) {
    auto t = must_build(inject_cfg("        header: x-api-key\n"));
    exchange ex = req("api.x.com");
    ex.request_headers.add("X-API-KEY", "client-value");
    ex.request_headers.add("X-Api-Key", "another");
    auto r = run(*t, ex);
    ASSERT_EQ(ex.request_headers.size(), 2u);
    EXPECT_EQ(ex.request_headers.entries()[1].name, "x-api-key");
    EXPECT_EQ(ex.request_headers.entries()[1].value, k_real);
    EXPECT_EQ(r.notes(), R"({"injected":[{"secret":"IRON_T_OPENAI","locations":["header:x-api-key"]}]})");
}

TEST_F(Secrets, InjectQueryParamInPlace) {
    auto t = must_build(inject_cfg("        query_param: api_key\n"));
    exchange ex = req("api.x.com");
    ex.raw_query = "a=1&api_key=client&b=%2F&api_key=dup";
    auto r = run(*t, ex);
    EXPECT_EQ(ex.raw_query, std::string("a=1&api_key=") + k_real + "&b=%2F");
    EXPECT_EQ(r.notes(), R"({"injected":[{"secret":"IRON_T_OPENAI","locations":["query:api_key"]}]})");

    exchange empty = req("api.x.com");
    run(*t, empty);
    EXPECT_EQ(empty.raw_query, std::string("api_key=") + k_real);
}

TEST_F(Secrets, InjectNonMatchingHostUntouched) {
    auto t = must_build(inject_cfg("        header: Authorization\n"));
    exchange ex = req("other.com");
    ex.request_headers.add("Authorization", "mine");
    EXPECT_TRUE(run(*t, ex).trace.annotations.empty());
    EXPECT_EQ(header(ex, "Authorization"), "mine");
}

TEST_F(Secrets, InjectMixedWithReplace) {
    auto t = must_build(R"(config:
  secrets:
    - source: {type: env, var: IRON_T_OPENAI}
      rules: [{host: "*"}]
      inject: {header: X-Injected, formatter: "Token {{.Value}}"}
    - source: {type: env, var: IRON_T_OTHER}
      rules: [{host: "*"}]
      replace: {proxy_value: ptok}
)");
    ASSERT_TRUE(t);
    exchange ex = req("h");
    ex.request_headers.add("X-Swap", "ptok");
    auto r = run(*t, ex);
    EXPECT_EQ(header(ex, "X-Injected"), std::string("Token ") + k_real);
    EXPECT_EQ(header(ex, "X-Swap"), k_other_real);
    EXPECT_EQ(r.notes(), R"({"injected":[{"secret":"IRON_T_OPENAI","locations":["header:X-Injected"]}],)"
                         R"("swapped":[{"secret":"IRON_T_OTHER","locations":["header:X-Swap"]}]})");
}

TEST_F(Secrets, FormatterParsing) {
    auto f = formatter::parse("{{- .Value -}}  and {{base64 `a b` \"c\\\"d\" .Value}}");
    ASSERT_TRUE(f) << f.message();
    // base64("a bc\"dV")
    EXPECT_EQ(f->render("V"), "Vand YSBiYyJkVg==");
    EXPECT_EQ(formatter::parse("")->render("raw"), "raw");
    EXPECT_EQ(formatter::parse("x {{ .Value }} y")->render("v"), "x v y");
    for (const char* bad : {"{{ .Other }}", "{{ .Value | upper }}", "{{ printf \"%s\" .Value }}", "{{ .Value",
                            "{{ base64 foo }}", "{{ base64 \"unterminated }}"}) {
        EXPECT_FALSE(formatter::parse(bad)) << bad;
    }
    EXPECT_EQ(build_error(inject_cfg("        header: A\n        formatter: \"{{ .Nope }}\"\n")),
              "c.yaml:7:20: transforms[1].config.secrets[0].inject.formatter: parsing formatter template: "
              "unsupported action {{ .Nope }} (supported: {{ .Value }} and {{ base64 \"prefix:\" .Value }})");
}

// --- unavailable secrets ------------------------------------------------------------------------

std::string missing_cfg(const std::string& mode_block) {
    return "config:\n  secrets:\n    - source: {type: env, var: IRON_T_MISSING}\n      rules: [{host: api.x.com}]\n" +
           mode_block;
}

TEST_F(Secrets, UnavailableSecretForwardsThePlaceholderByDefault) {
    // As Go: the placeholder is inert, the request goes on, the trace says what was missing.
    auto t = must_build(missing_cfg("      replace: {proxy_value: ptok}\n"));
    ASSERT_TRUE(t);
    exchange ex = req("api.x.com");
    ex.request_headers.add("Authorization", "Bearer ptok");
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_EQ(header(ex, "Authorization"), "Bearer ptok");
    EXPECT_EQ(r.notes(), R"({"secret_unavailable":["IRON_T_MISSING"]})");
}

TEST_F(Secrets, OnUnavailableRejectRejectsWhenPlaceholderPresent) {
    auto t = must_build("config:\n  on_unavailable: reject\n" + missing_cfg("      replace: {proxy_value: ptok}\n").substr(8));
    ASSERT_TRUE(t);
    exchange ex = req("api.x.com");
    ex.request_headers.add("Authorization", "Bearer ptok");
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::reject);
    EXPECT_EQ(r.v.status, 403);
    EXPECT_EQ(header(ex, "Authorization"), "Bearer ptok");
    EXPECT_EQ(r.notes(),
              R"({"reject_reason":"secret_unavailable","rejected":"IRON_T_MISSING","secret_unavailable":["IRON_T_MISSING"]})");
}

TEST_F(Secrets, OnUnavailableOption) {
    auto bad = build("config:\n  on_unavailable: drop\n  secrets: []\n");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.message().find("on_unavailable: must be \"forward\" (default) or \"reject\"; got \"drop\""),
              std::string::npos)
        << bad.message();
    EXPECT_TRUE(must_build("config:\n  on_unavailable: forward\n  secrets: []\n"));
}

TEST_F(Secrets, UnavailableSecretSkippedWhenNoPlaceholderAndNotRequired) {
    auto t = must_build("config:\n  on_unavailable: reject\n" + missing_cfg("      replace: {proxy_value: ptok}\n").substr(8));
    exchange ex = req("api.x.com");
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_EQ(r.notes(), R"({"secret_unavailable":["IRON_T_MISSING"]})");
}

TEST_F(Secrets, UnavailableSecretRequiredRejectsReplaceAndInject) {
    for (const char* block : {"      replace: {proxy_value: ptok, require: true}\n",
                              "      inject: {header: X-Key, require: true}\n"}) {
        auto t = must_build(missing_cfg(block));
        ASSERT_TRUE(t);
        exchange ex = req("api.x.com");
        auto r = run(*t, ex);
        EXPECT_EQ(r.v.what, verdict::kind::reject) << block;
        EXPECT_NE(r.notes().find(R"("reject_reason":"secret_unavailable")"), std::string::npos);
    }
    auto optional = must_build(missing_cfg("      inject: {header: X-Key}\n"));
    exchange ex = req("api.x.com");
    auto r = run(*optional, ex);
    EXPECT_EQ(r.v.what, verdict::kind::next);
    EXPECT_EQ(header(ex, "X-Key"), "<absent>");
    EXPECT_EQ(r.notes(), R"({"secret_unavailable":["IRON_T_MISSING"]})");
}

TEST_F(Secrets, BuildsWithUnavailableSecretAndRecoversOnRefresh) {
    auto t = must_build(missing_cfg("      replace: {proxy_value: ptok}\n"));
    setenv("IRON_T_MISSING", "now-here", 1);
    t->refresh();
    exchange ex = req("api.x.com");
    ex.request_headers.add("X", "ptok");
    EXPECT_EQ(run(*t, ex).v.what, verdict::kind::next);
    EXPECT_EQ(header(ex, "X"), "now-here");
    unsetenv("IRON_T_MISSING");
}

TEST_F(Secrets, SecretWithNewlineNeverWrittenIntoHeader) {
    setenv("IRON_T_OPENAI", "evil\r\nX-Injected: 1", 1);
    auto t = must_build(replace_cfg(""));
    exchange ex = req("h");
    ex.request_headers.add("X", "ptok");
    auto r = run(*t, ex);
    EXPECT_EQ(r.v.what, verdict::kind::error);
    EXPECT_EQ(r.v.error.find("evil"), std::string::npos);
    auto inj = must_build(inject_cfg("        header: X\n", "[{host: \"*\"}]"));
    exchange ex2 = req("h");
    EXPECT_EQ(run(*inj, ex2).v.what, verdict::kind::error);
}

// --- config errors ------------------------------------------------------------------------------

TEST_F(Secrets, ConfigErrors) {
    const std::string p = "transforms[1].config.secrets[0]";
    const std::string src = "    - source: {type: env, var: IRON_T_OPENAI}\n      rules: [{host: \"*\"}]\n";
    auto cfg = [&](const std::string& rest) { return "config:\n  secrets:\n" + src + rest; };
    EXPECT_EQ(build_error(cfg("")), "c.yaml:3:7: " + p + ": must specify either inject or replace");
    EXPECT_EQ(build_error(cfg("      proxy_value: a\n      replace: {proxy_value: b}\n")),
              "c.yaml:3:7: " + p + ": cannot use both top-level proxy_value/match_headers and replace block");
    EXPECT_EQ(build_error(cfg("      match_headers: [a]\n      inject: {header: b}\n")),
              "c.yaml:3:7: " + p + ": cannot use both top-level proxy_value/match_headers and inject block");
    EXPECT_EQ(build_error(cfg("      replace: {proxy_value: b}\n      inject: {header: b}\n")),
              "c.yaml:3:7: " + p + ": cannot specify both inject and replace");
    EXPECT_EQ(build_error(cfg("      replace: {match_body: true}\n")),
              "c.yaml:5:16: " + p + ".replace: replace.proxy_value is required");
    EXPECT_EQ(build_error(cfg("      require: true\n")), "c.yaml:3:7: " + p + ": proxy_value is required");
    EXPECT_EQ(build_error(cfg("      inject: {formatter: x}\n")),
              "c.yaml:5:15: " + p + ": inject must specify either header or query_param");
    EXPECT_EQ(build_error(cfg("      inject: {header: a, query_param: b}\n")),
              "c.yaml:5:15: " + p + ": inject cannot specify both header and query_param");
    EXPECT_EQ(build_error(cfg("      replace: {proxy_value: a, match_querry: true}\n")),
              "c.yaml:5:33: " + p + ".replace: unknown key \"match_querry\" (allowed: proxy_value, match_headers, "
              "match_query, match_path, match_body, require, allow_connect_without_header)");
    EXPECT_EQ(build_error(cfg("      replace: {proxy_value: a, match_headers: ['/(/']}\n")).rfind(
                  "c.yaml:5:49: " + p + ".replace.match_headers[0]: invalid regex \"/(/\": ", 0),
              0u);
    EXPECT_EQ(build_error(cfg("      replace: {proxy_value: a, match_headers: all}\n")),
              "c.yaml:5:48: " + p + ".replace.match_headers: expected a list of header names (or none), got \"all\"");
    EXPECT_EQ(build_error(cfg("      replace: {proxy_value: a, require: maybe}\n")).rfind("c.yaml:5:42: " + p +
                                                                                          ".replace.require: ", 0),
              0u);
}

TEST_F(Secrets, HostsInCurrentShapeIsAnErrorPointingAtRules) {
    EXPECT_EQ(build_error(R"(config:
  secrets:
    - source: {type: env, var: IRON_T_OPENAI}
      replace: {proxy_value: a}
      hosts: [{name: api.x.com}]
)"),
              "c.yaml:5:14: transforms[1].config.secrets[0].hosts: hosts is the seed-era key and is not used with a "
              "source block; bind the secret with rules: [{host: \"api.example.com\"}] instead");
}

TEST_F(Secrets, EntryBoundToNothingIsAnError) {
    EXPECT_EQ(build_error("config:\n  secrets:\n    - source: {type: env, var: X}\n      replace: {proxy_value: a}\n"),
              "c.yaml:3:7: transforms[1].config.secrets[0]: rules: at least one rule is required: a secret is only "
              "used for the hosts it is bound to (use rules: [{host: \"*\"}] to bind it to every host)");
    EXPECT_EQ(build_error("config:\n  source: env\n  secrets:\n    - var: X\n      proxy_value: a\n"),
              "c.yaml:4:7: transforms[1].config.secrets[0]: hosts: at least one host is required: a secret is only "
              "swapped for the hosts it is bound to (use hosts: [{name: \"*\"}] to bind it to every host)");
}

TEST_F(Secrets, SeedShapeErrors) {
    const std::string p = "transforms[1].config";
    EXPECT_EQ(build_error("config:\n  source: vault\n  secrets: []\n"),
              "c.yaml:2:11: " + p + ".source: the transform-level source must be \"env\" (seed-era form); "
              "per-secret sources go in secrets[i].source");
    EXPECT_EQ(build_error("config:\n  source: env\n  secrets:\n    - proxy_value: a\n      hosts: [{name: x}]\n"),
              "c.yaml:4:7: " + p + ".secrets[0]: var is required");
    EXPECT_EQ(build_error("config:\n  source: env\n  secrets:\n    - var: X\n      proxy_value: a\n"
                          "      match_query: true\n      hosts: [{name: x}]\n"),
              "c.yaml:6:7: " + p + ".secrets[0]: unknown key \"match_query\" (allowed: var, proxy_value, "
              "match_headers, match_body, require, hosts)");
    EXPECT_EQ(build_error("config:\n  source: env\n  secrets:\n    - var: X\n      proxy_value: a\n"
                          "      hosts: [{name: x, cidr: 10.0.0.0/8}]\n"),
              "c.yaml:6:15: " + p + ".secrets[0].hosts[0]: name and cidr are mutually exclusive");
    EXPECT_EQ(build_error("config:\n  source: env\n  secrets:\n    - var: X\n      proxy_value: a\n"
                          "      hosts: [{host: x}]\n"),
              "c.yaml:6:16: " + p + ".secrets[0].hosts[0]: unknown key \"host\" (allowed: name, cidr)");
    EXPECT_EQ(build_error("config:\n  secretz: []\n"),
              "c.yaml:2:3: " + p + ": unknown key \"secretz\" (allowed: source, secrets, redact_responses, on_unavailable)");
}

TEST_F(Secrets, EmptyConfigBuildsAndDoesNothing) {
    for (const char* y : {"config:\n", "config: {}\n", "config:\n  secrets: []\n"}) {
        auto t = must_build(y);
        ASSERT_TRUE(t) << y;
        exchange ex = req("h");
        EXPECT_EQ(run(*t, ex).v.what, verdict::kind::next);
    }
}

}  // namespace
}  // namespace iron::transforms
