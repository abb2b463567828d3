// The hmac_sign transform: its template subset, key decoding, HMAC against the RFC 2202 / 4231
// vectors, timestamp formats, the config checks with the Go proxy's messages, and a request signed
// end to end on an exchange.
#include "transforms/hmac_sign/hmac_sign.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include <boost/json/serialize.hpp>

#include "audit/record.hpp"
#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::transforms::hmac_sign {
namespace {

using pipeline::exchange;
using pipeline::verdict;

std::string render(std::string_view text, const template_data& d) {
    auto t = go_template::parse("t", text);
    EXPECT_TRUE(t) << t.message();
    if (!t) return "<parse error>";
    auto r = t->render(d);
    return r ? *r : "ERROR: " + r.message();
}

TEST(HmacTemplate, FieldsFunctionsAndTrimMarkers) {
    std::vector<std::pair<std::string, std::string>> creds = {{"api_key", "K"}, {"pass-phrase", "P"}};
    template_data d;
    d.fields = {{"Method", "GET"}, {"Path", "/a b"}, {"Body", ""}};
    d.credentials = &creds;
    EXPECT_EQ(render("{{.Method}} {{ .Path }}!", d), "GET /a b!");
    EXPECT_EQ(render("x  {{- .Method -}}  y", d), "xGETy");
    EXPECT_EQ(render("{{/* a comment */}}{{.Credentials.api_key}}", d), "K");
    EXPECT_EQ(render(R"({{ index .Credentials "pass-phrase" }})", d), "P");
    EXPECT_EQ(render(R"({{ printf "%s:%s" .Method .Credentials.api_key }})", d), "GET:K");
    EXPECT_EQ(render(R"({{ printf "%q|%x|%%" .Method .Method }})", d), "\"GET\"|474554|%");
    EXPECT_EQ(render(R"({{ print "a" `b` .Method }})", d), "abGET");
    EXPECT_EQ(render("{{ .Path | urlquery }}", d), "%2Fa+b");
    EXPECT_EQ(render("{{ len .Method }}", d), "3");
    EXPECT_EQ(render("{{ .Method | printf \"<%s>\" }}", d), "<GET>");
}

TEST(HmacTemplate, RuntimeErrorsNameTheFieldNotAValue) {
    std::vector<std::pair<std::string, std::string>> creds = {{"secret", "TOPSECRET"}};
    template_data d;
    d.fields = {{"Timestamp", "1"}};
    d.credentials = &creds;
    const std::string missing = render("{{.Credentials.nope}}", d);
    EXPECT_NE(missing.find("map has no entry for key \"nope\""), std::string::npos) << missing;
    const std::string unknown = render("{{.Nope}}", d);
    EXPECT_NE(unknown.find("can't evaluate field Nope"), std::string::npos) << unknown;
    // Printing the map (Go would print every credential) is refused.
    const std::string whole = render("{{.Credentials}}", d);
    EXPECT_EQ(whole.find("TOPSECRET"), std::string::npos);
    EXPECT_NE(whole.find("ERROR"), std::string::npos);
    template_data no_creds;
    EXPECT_NE(render("{{.Credentials.secret}}", no_creds).find("can't evaluate field Credentials"), std::string::npos);
}

TEST(HmacTemplate, ParseErrors) {
    for (const char* bad : {"{{ if .X }}a{{ end }}", "{{ .X", "{{ nosuch .X }}", "{{ printf .X }}", R"({{ printf "%d" .X }})",
                            "{{ .X .Y }}", "{{ | .X }}", "{{ range . }}{{ end }}", "{{ $x := 1 }}"}) {
        EXPECT_FALSE(go_template::parse("t", bad)) << bad;
    }
    auto t = go_template::parse("hmac_sign.message", "{{ nosuch }}");
    ASSERT_FALSE(t);
    EXPECT_EQ(t.message(), "template: hmac_sign.message: function \"nosuch\" not defined");
}

TEST(HmacSign, Rfc4231AndRfc2202Vectors) {
    const std::string msg = "what do ya want for nothing?";
    EXPECT_EQ(sign(digest::sha256, "Jefe", msg, output_encoding::hex),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    EXPECT_EQ(sign(digest::sha512, "Jefe", msg, output_encoding::hex),
              "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
              "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
    EXPECT_EQ(sign(digest::sha1, "Jefe", msg, output_encoding::hex), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    EXPECT_EQ(sign(digest::sha256, "Jefe", msg, output_encoding::base64), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
}

TEST(HmacSign, KeyDecoding) {
    EXPECT_EQ(*decode_key(key_encoding::raw, "abc"), "abc");
    EXPECT_EQ(*decode_key(key_encoding::base64, "SmVmZQ=="), "Jefe");
    EXPECT_EQ(*decode_key(key_encoding::hex, "4a656665"), "Jefe");
    auto bad_hex = decode_key(key_encoding::hex, "4a6g");
    ASSERT_FALSE(bad_hex);
    EXPECT_EQ(bad_hex.message(), "decoding hex key: invalid byte at offset 3");  // where, not what
    EXPECT_FALSE(decode_key(key_encoding::hex, "abc"));
    EXPECT_FALSE(decode_key(key_encoding::base64, "not base64!"));
}

TEST(HmacSign, TimestampFormats) {
    const auto t = std::chrono::system_clock::time_point(std::chrono::nanoseconds(1700000000123456789LL));
    EXPECT_EQ(format_timestamp(timestamp_format::unix_seconds, t), "1700000000");
    EXPECT_EQ(format_timestamp(timestamp_format::unix_millis, t), "1700000000123");
    EXPECT_EQ(format_timestamp(timestamp_format::unix_nanos, t), "1700000000123456789");
    EXPECT_EQ(format_timestamp(timestamp_format::rfc3339, t), "2023-11-14T22:13:20Z");
}

result<std::unique_ptr<hmac_sign_transform>> build(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return hmac_sign_transform::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

constexpr const char* good = R"(config:
  signature: {message: "{{.Timestamp}}{{.Method}}{{.PathWithQuery}}{{.Body}}", algorithm: sha256, output_encoding: hex}
  credentials:
    secret: {type: env, var: HMAC_UNIT_KEY}
  headers:
    - {name: X-Sig, value: "{{.Signature}}"}
    - {name: X-TS, value: "{{.Timestamp}}"}
  rules: [{host: api.venue.test}]
)";

TEST(HmacSignConfig, GoMessages) {
    auto expect_error = [](const std::string& yaml, const std::string& needle) {
        auto t = build(yaml);
        ASSERT_FALSE(t) << yaml;
        EXPECT_NE(t.message().find(needle), std::string::npos) << t.message();
    };
    std::string y = good;
    auto with = [&](const std::string& from, const std::string& to) {
        std::string out = y;
        out.replace(out.find(from), from.size(), to);
        return out;
    };
    expect_error(with("algorithm: sha256", "algorithm: md5"), "hmac_sign: unknown signature.algorithm \"md5\" (want sha256|sha512|sha1)");
    expect_error(with("output_encoding: hex", "output_encoding: b32"), "unknown signature.output_encoding \"b32\" (want base64|hex)");
    expect_error(with("algorithm: sha256", "key_encoding: b85"), "unknown signature.key_encoding \"b85\" (want raw|base64|hex)");
    expect_error(with("secret:", "other:"), "hmac_sign: \"credentials\" must include \"secret\" (the HMAC key)");
    expect_error(with("rules: [{host: api.venue.test}]", "rules: []"), "hmac_sign: at least one entry in \"rules\" is required");
    expect_error(with("name: X-TS, value: \"{{.Timestamp}}\"", "name: X-TS"), "hmac_sign: headers[1].value is required");
    expect_error(with("name: X-TS,", "name: \"X TS\","), "is not a valid header name");
    expect_error(with("{{.Body}}", "{{ if .Body }}"), "hmac_sign: parsing signature.message: template: hmac_sign.message:");
    expect_error(with("rules:", "extra: 1\n  rules:"), "extra");
}

TEST(HmacSignTransform, SignsAndReplacesHeaders) {
    ::setenv("HMAC_UNIT_KEY", "Jefe", 1);
    auto t = build(good);
    ASSERT_TRUE(t) << t.message();
    exchange ex;
    ex.method = "POST";
    ex.host = "api.venue.test:8443";
    ex.policy_host = "api.venue.test";
    ex.path = ex.raw_path = "/v1/orders";
    ex.raw_query = "a=1";
    ex.request_headers.add("Content-Length", "2");
    ex.request_headers.add("x-sig", "forged");
    ex.request_body.present = true;
    ex.request_body.data = "{}";
    audit::trace tr;
    ex.current_trace = &tr;
    ASSERT_EQ((*t)->on_request(ex).what, verdict::kind::next);
    const std::string ts(*ex.request_headers.get("X-TS"));
    EXPECT_EQ(*ex.request_headers.get("X-Sig"), sign(digest::sha256, "Jefe", ts + "POST/v1/orders?a=1{}", output_encoding::hex));
    int sig_headers = 0;
    for (const auto& e : ex.request_headers.entries())
        if (core::iequals(e.name, "X-Sig")) {
            ++sig_headers;
            EXPECT_EQ(e.name, "X-Sig");
        }
    EXPECT_EQ(sig_headers, 1);
    EXPECT_EQ(boost::json::serialize(tr.annotations), R"({"injected":["header:X-Sig","header:X-TS"]})");
}

TEST(HmacSignTransform, RefusesWhatItCannotSignWhole) {
    ::setenv("HMAC_UNIT_KEY", "Jefe", 1);
    auto t = build(good);
    ASSERT_TRUE(t) << t.message();
    auto run = [&](bool complete, bool chunked) {
        exchange ex;
        ex.method = "POST";
        ex.host = ex.policy_host = "api.venue.test";
        ex.path = ex.raw_path = "/";
        if (chunked) ex.request_headers.add("Transfer-Encoding", "chunked");
        else ex.request_headers.add("Content-Length", "100");
        ex.request_body.present = true;
        ex.request_body.complete = complete;
        ex.request_body.data = "prefix";
        audit::trace tr;
        ex.current_trace = &tr;
        verdict v = (*t)->on_request(ex);
        return std::make_pair(v, boost::json::serialize(tr.annotations));
    };
    auto [cut, cut_notes] = run(false, false);
    EXPECT_EQ(cut.status, 413);
    EXPECT_EQ(cut.body, R"({"error":"hmac_sign","reason":"body_truncated"})");
    EXPECT_EQ(cut_notes, R"({"content_length":100,"buffered_length":6,"rejected":"body_truncated"})");
    auto [chunked, chunked_notes] = run(true, true);
    EXPECT_EQ(chunked.status, 400);
    EXPECT_EQ(chunked.body, R"({"error":"hmac_sign","reason":"chunked_body_not_allowed"})");
    EXPECT_EQ(*chunked.headers.get("Content-Type"), "application/json");

    exchange unbuffered;
    unbuffered.method = "POST";
    unbuffered.host = unbuffered.policy_host = "api.venue.test";
    unbuffered.path = unbuffered.raw_path = "/";
    unbuffered.request_headers.add("Content-Length", "10");
    audit::trace tr;
    unbuffered.current_trace = &tr;
    verdict missing = (*t)->on_request(unbuffered);
    EXPECT_EQ(missing.status, 400);
    EXPECT_EQ(missing.body, R"({"error":"hmac_sign","reason":"body_missing"})");
}

}  // namespace
}  // namespace iron::transforms::hmac_sign
