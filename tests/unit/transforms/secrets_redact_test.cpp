// redact_responses: the real values the secrets transform swapped into a request are mapped back
// to their placeholders in the response head, trailers and uncompressed body; off by default.
#include "transforms/secrets_redact.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json/serialize.hpp>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"
#include "pipeline/pipeline.hpp"
#include "support/secrets_fixture.hpp"
#include "transforms/secrets.hpp"
#include "transforms/secrets_scan.hpp"

namespace iron::transforms {
namespace {

using pipeline::exchange;
using pipeline::verdict;

constexpr const char* k_real = "sk-REAL-0123456789";
constexpr const char* k_ph = "proxy-openai-abc123";

class Redact : public test::secrets_fixture {
protected:
    Redact() : secrets_fixture("transforms[0].config") {}
    void SetUp() override {
        set_env("IRON_R_SECRET", k_real);
        set_env("IRON_R_ODD", "a b/c?d");
    }
};

std::string config(const char* redact_line, const char* entry_extra = "") {
    return std::string("config:\n") + redact_line +
           "  secrets:\n"
           "    - source: {type: env, var: IRON_R_SECRET}\n"
           "      rules: [{host: api.test}]\n"
           "      replace: {proxy_value: \"" + k_ph + "\", match_query: true, match_path: true, match_body: true" +
           entry_extra + "}\n";
}

exchange req(const std::string& host) {
    exchange ex;
    ex.method = "GET";
    ex.host = host;
    ex.policy_host = core::normalize_host(host);
    ex.path = ex.raw_path = "/";
    return ex;
}

// The request phase and then the response phase, through the real pipeline (traces and all).
struct round_trip {
    std::vector<audit::trace> request_traces, response_traces;
};
round_trip run_both(const pipeline::pipeline& p, exchange& ex, core::header_list response_headers) {
    round_trip r;
    EXPECT_EQ(p.run_request(ex, r.request_traces).outcome.what, verdict::kind::next);
    ex.status = 200;
    ex.response_headers = std::move(response_headers);
    EXPECT_EQ(p.run_response(ex, r.response_traces).outcome.what, verdict::kind::next);
    return r;
}

pipeline::pipeline one(std::unique_ptr<secrets_transform> t) {
    std::vector<std::unique_ptr<const pipeline::transform>> v;
    v.push_back(std::move(t));
    return pipeline::pipeline(std::move(v));
}

// The whole body through the attached filters, in pieces of `piece` bytes.
std::string filter_body(exchange& ex, std::string_view body, std::size_t piece) {
    std::string out;
    for (std::size_t i = 0; i < body.size(); i += piece) ex.response_filters.feed(body.substr(i, piece), out);
    ex.response_filters.finish(out);
    return out;
}

std::string annotations(const round_trip& r, exchange& ex) {
    auto traces = r.response_traces;
    ex.response_filters.annotate(traces);
    return boost::json::serialize(traces.at(0).annotations);
}

TEST_F(Redact, ConfigKeyIsStrict) {
    EXPECT_FALSE(must_build(config(""))->redact_responses());
    EXPECT_FALSE(must_build(config("  redact_responses: false\n"))->redact_responses());
    EXPECT_TRUE(must_build(config("  redact_responses: true\n"))->redact_responses());
    auto bad = build(config("  redact_responses: sometimes\n"));
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.message().find("redact_responses"), std::string::npos) << bad.message();
    auto typo = build(config("  redact_response: true\n"));
    ASSERT_FALSE(typo);
    EXPECT_NE(typo.message().find("redact_response"), std::string::npos) << typo.message();
}

TEST_F(Redact, OffByDefaultResponsePassesUnmodified) {
    auto p = one(must_build(config("")));
    exchange ex = req("api.test");
    ex.request_headers.add("Authorization", std::string("Bearer ") + k_ph);
    core::header_list res;
    res.add("X-Echo", std::string("Bearer ") + k_real);
    res.add("Content-Length", "42");
    auto r = run_both(p, ex, res);
    EXPECT_TRUE(ex.redactions.empty());
    EXPECT_TRUE(ex.response_filters.empty());
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), std::string("Bearer ") + k_real);
    EXPECT_TRUE(r.response_traces.at(0).annotations.empty());
}

TEST_F(Redact, HeadersAndBodySplitAcrossPieces) {
    auto p = one(must_build(config("  redact_responses: true\n")));
    exchange ex = req("api.test");
    ex.request_headers.add("Authorization", std::string("Bearer ") + k_ph);
    core::header_list res;
    res.add("X-Echo", std::string("Bearer ") + k_real);
    res.add("Content-Type", "application/json");
    auto r = run_both(p, ex, res);
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), std::string("Bearer ") + k_ph);
    ASSERT_TRUE(ex.response_filters.rewrites_body());
    const std::string body = std::string("{\"authorization\": \"Bearer ") + k_real + "\", \"again\": \"" + k_real + "\"}";
    const std::string want = std::string("{\"authorization\": \"Bearer ") + k_ph + "\", \"again\": \"" + k_ph + "\"}";
    EXPECT_EQ(filter_body(ex, body, 1), want);
    EXPECT_EQ(annotations(r, ex), R"({"redacted":3})");
}

TEST_F(Redact, CompressedBodySkippedHeadersStillRedacted) {
    auto p = one(must_build(config("  redact_responses: true\n")));
    exchange ex = req("api.test");
    ex.request_headers.add("X-Key", k_ph);
    core::header_list res;
    res.add("Content-Encoding", "gzip");
    res.add("X-Echo", k_real);
    auto r = run_both(p, ex, res);
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), k_ph);
    EXPECT_FALSE(ex.response_filters.empty());
    EXPECT_FALSE(ex.response_filters.rewrites_body());
    EXPECT_EQ(annotations(r, ex), R"j({"redacted":1,"redaction":"skipped (content-encoding)"})j");
}

TEST_F(Redact, IdentityEncodingIsNotCompressed) {
    core::header_list h;
    EXPECT_FALSE(redact::body_is_encoded(h));
    h.add("Content-Encoding", " Identity ");
    h.add("Transfer-Encoding", "chunked");
    EXPECT_FALSE(redact::body_is_encoded(h));
    h.add("content-encoding", "identity, br");
    EXPECT_TRUE(redact::body_is_encoded(h));
    core::header_list te;
    te.add("Transfer-Encoding", "gzip, chunked");
    EXPECT_TRUE(redact::body_is_encoded(te));
}

TEST_F(Redact, NothingSwappedNothingRedacted) {
    auto p = one(must_build(config("  redact_responses: true\n")));
    exchange ex = req("api.test");  // no placeholder in the request
    core::header_list res;
    res.add("X-Echo", k_real);
    auto r = run_both(p, ex, res);
    EXPECT_TRUE(ex.redactions.empty());
    EXPECT_TRUE(ex.response_filters.empty());
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), k_real);
    exchange other = req("other.test");  // unbound host: not swapped either
    other.request_headers.add("X-Key", k_ph);
    run_both(p, other, res);
    EXPECT_TRUE(other.redactions.empty());
}

TEST_F(Redact, BasicCredentialsMappedBackToTheClientsBase64) {
    auto p = one(must_build(config("  redact_responses: true\n")));
    exchange ex = req("api.test");
    const std::string client_b64 = scan::base64_encode(std::string("user:") + k_ph);
    const std::string sent_b64 = scan::base64_encode(std::string("user:") + k_real);
    ex.request_headers.add("Authorization", "Basic " + client_b64);
    core::header_list res;
    res.add("X-Auth", "Basic " + sent_b64);
    auto r = run_both(p, ex, res);
    EXPECT_EQ(*ex.response_headers.get("X-Auth"), "Basic " + client_b64);
    EXPECT_EQ(filter_body(ex, "decoded: user:" + std::string(k_real) + " raw: " + sent_b64, 7),
              "decoded: user:" + std::string(k_ph) + " raw: " + client_b64);
}

TEST_F(Redact, EscapedFormsFromQueryAndPath) {
    auto p = one(must_build(std::string("config:\n  redact_responses: true\n  secrets:\n"
                                        "    - source: {type: env, var: IRON_R_ODD}\n"
                                        "      rules: [{host: api.test}]\n"
                                        "      replace: {proxy_value: PH, match_query: true, match_path: true}\n")));
    exchange ex = req("api.test");
    ex.raw_query = "k=PH";
    ex.raw_path = ex.path = "/x/PH";
    run_both(p, ex, {});
    EXPECT_EQ(ex.raw_query, "k=a%20b%2Fc%3Fd");
    EXPECT_EQ(ex.raw_path, "/x/a%20b/c%3Fd");
    EXPECT_EQ(filter_body(ex, "q=a%20b%2Fc%3Fd p=/x/a%20b/c%3Fd raw=a b/c?d", 3), "q=PH p=/x/PH raw=PH");
}

TEST_F(Redact, InjectedValuesBecomeTheMarker) {
    auto p = one(must_build(std::string("config:\n  redact_responses: true\n  secrets:\n"
                                        "    - source: {type: env, var: IRON_R_SECRET}\n"
                                        "      rules: [{host: api.test}]\n"
                                        "      inject: {header: Authorization, formatter: \"Token {{ .Value }}\"}\n")));
    exchange ex = req("api.test");
    core::header_list res;
    res.add("X-Echo", std::string("Token ") + k_real);
    auto r = run_both(p, ex, res);
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), "[REDACTED]");
    EXPECT_EQ(filter_body(ex, std::string("[") + k_real + "]", 4), "[[REDACTED]]");
}

TEST_F(Redact, TrailersAndCountsNeverTheValue) {
    auto p = one(must_build(config("  redact_responses: true\n")));
    exchange ex = req("api.test");
    ex.request_headers.add("X-Key", k_ph);
    auto r = run_both(p, ex, {});
    std::string trailer = std::string("bad token ") + k_real;
    ex.response_filters.rewrite_text(trailer);
    EXPECT_EQ(trailer, std::string("bad token ") + k_ph);
    const std::string notes = annotations(r, ex);
    EXPECT_EQ(notes, R"({"redacted":1})");
    EXPECT_EQ(notes.find(k_real), std::string::npos);
}

TEST_F(Redact, PlaceholderThatWouldSplitAHeaderBecomesTheMarker) {
    auto p = one(must_build(std::string("config:\n  redact_responses: true\n  secrets:\n"
                                        "    - source: {type: env, var: IRON_R_SECRET}\n"
                                        "      rules: [{host: api.test}]\n"
                                        "      replace: {proxy_value: \"a\\r\\nb\", match_body: true}\n")));
    exchange ex = req("api.test");
    ex.request_body.present = true;
    ex.request_body.data = "x a\r\nb y";
    core::header_list res;
    res.add("X-Echo", k_real);
    run_both(p, ex, res);
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), "[REDACTED]");
}

TEST_F(Redact, EachTransformRedactsWhatItSwapped) {
    setenv("IRON_R_TWO", "second-REAL-value", 1);
    std::vector<std::unique_ptr<const pipeline::transform>> v;
    v.push_back(must_build(config("  redact_responses: true\n")));
    v.push_back(must_build("config:\n  redact_responses: true\n  secrets:\n"
                           "    - source: {type: env, var: IRON_R_TWO}\n"
                           "      rules: [{host: api.test}]\n"
                           "      replace: {proxy_value: PH2}\n"));
    pipeline::pipeline p(std::move(v));
    exchange ex = req("api.test");
    ex.request_headers.add("X-One", k_ph);
    ex.request_headers.add("X-Two", "PH2");
    core::header_list res;
    res.add("X-Echo", std::string(k_real) + " second-REAL-value");
    auto r = run_both(p, ex, res);
    EXPECT_EQ(ex.redactions.size(), 2u);
    EXPECT_EQ(*ex.response_headers.get("X-Echo"), std::string(k_ph) + " PH2");
    EXPECT_EQ(filter_body(ex, std::string(k_real) + "|second-REAL-value", 5), std::string(k_ph) + "|PH2");
    auto traces = r.response_traces;
    ex.response_filters.annotate(traces);
    EXPECT_EQ(boost::json::serialize(traces.at(0).annotations), R"({"redacted":2})");
    EXPECT_EQ(boost::json::serialize(traces.at(1).annotations), R"({"redacted":2})");
    unsetenv("IRON_R_TWO");
}

}  // namespace
}  // namespace iron::transforms
