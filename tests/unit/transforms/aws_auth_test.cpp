// The aws_auth transform: reading the client's SigV4 (both forms), its config checks, and a request
// re-signed on an exchange (header and presigned forms), with the signature recomputed here.
#include "transforms/aws_auth/aws_auth.hpp"
#include "transforms/aws_auth/client_signature.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include <boost/json/serialize.hpp>

#include "audit/record.hpp"
#include "aws/sigv4.hpp"
#include "config/yaml_util.hpp"

namespace iron::transforms::aws_auth {
namespace {

using pipeline::exchange;
using pipeline::verdict;

TEST(AwsAuthClientSignature, HeaderAndPresignedForms) {
    core::header_list h;
    h.add("Authorization", "AWS4-HMAC-SHA256 Credential=AKFAKE/20260101/eu-west-1/s3/aws4_request, "
                           "SignedHeaders=host;X-Amz-Date;x-amz-target, Signature=abc");
    auto sig = read_client_signature(h, "");
    ASSERT_TRUE(sig);
    EXPECT_FALSE(sig->presigned);
    EXPECT_EQ(sig->region, "eu-west-1");
    EXPECT_EQ(sig->service, "s3");
    EXPECT_EQ(sig->signed_headers, (std::vector<std::string>{"host", "x-amz-date", "x-amz-target"}));

    const std::string q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKFAKE%2F20260101%2Fus-east-2%2Fsqs%2Faws4_request"
                          "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=999999999&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    auto pre = read_client_signature({}, q);
    ASSERT_TRUE(pre);
    EXPECT_TRUE(pre->presigned);
    EXPECT_EQ(pre->region, "us-east-2");
    EXPECT_EQ(pre->service, "sqs");
    EXPECT_EQ(pre->expires.count(), 604800);  // capped at seven days
}

TEST(AwsAuthClientSignature, MalformedIsNone) {
    auto with_auth = [](const std::string& v) {
        core::header_list h;
        h.add("Authorization", v);
        return read_client_signature(h, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20260101%2Fr%2Fs%2Faws4_request");
    };
    EXPECT_FALSE(with_auth("Bearer token"));  // the header wins over the query
    EXPECT_FALSE(with_auth("AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_requests, Signature=x"));
    EXPECT_FALSE(with_auth("AWS4-HMAC-SHA256 Credential=AK/2026011/us-east-1/s3/aws4_request"));
    EXPECT_FALSE(with_auth("AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1\r\nX: y/s3/aws4_request"));
    EXPECT_FALSE(with_auth("AWS4-HMAC-SHA256 Credential=AK/20260101/us east/s3/aws4_request"));
    EXPECT_FALSE(with_auth("AWS4-HMAC-SHA1 Credential=AK/20260101/us-east-1/s3/aws4_request"));
    EXPECT_FALSE(read_client_signature({}, "X-Amz-Credential=A%2F20260101%2Fr%2Fs%2Faws4_request"));  // no algorithm
    EXPECT_FALSE(read_client_signature({}, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20260101%2Fr%2Fs%2Faws4_request"
                                           "&X-Amz-Expires=0"));
    EXPECT_FALSE(read_client_signature({}, "a=1"));
}

result<std::unique_ptr<aws_auth_transform>> build(const std::string& body) {
    YAML::Node root = YAML::Load("config:\n" + body);
    return aws_auth_transform::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[0].config"});
}

constexpr const char* static_keys = R"(  access_key_id: {type: env, var: AWS_AUTH_UNIT_ID}
  secret_access_key: {type: env, var: AWS_AUTH_UNIT_SECRET}
  allowed_regions: [us-east-1]
  rules: [{host: "*.amazonaws.com"}]
)";

TEST(AwsAuthConfig, ExactlyOneCredentialSource) {
    auto expect_error = [](const std::string& yaml, const std::string& needle) {
        auto t = build(yaml);
        ASSERT_FALSE(t) << yaml;
        EXPECT_NE(t.message().find(needle), std::string::npos) << t.message();
    };
    const std::string one = "aws_auth: exactly one of access_key_id/secret_access_key or credentials_provider is required";
    expect_error("  rules: [{host: a.test}]\n", one);
    expect_error(std::string(static_keys) + "  credentials_provider: {type: workload_identity}\n", one);
    expect_error("  access_key_id: {type: env, var: X}\n  rules: [{host: a.test}]\n", "must both be set");
    expect_error("  credentials_provider: {type: irsa}\n  rules: [{host: a.test}]\n",
                 "unknown credentials_provider type \"irsa\" (want workload_identity)");
    expect_error("  credentials_provider: {type: workload_identity, role: x}\n  rules: [{host: a.test}]\n", "role");
    expect_error("  credentials_provider: {type: workload_identity}\n  rules: []\n", "at least one entry in \"rules\"");
    expect_error("  credentials_provider: {type: workload_identity}\n  unsigned_payload: maybe\n  rules: [{host: a}]\n",
                 "unsigned_payload");
    auto wi = build("  credentials_provider: {type: workload_identity, region: eu-west-1}\n  rules: [{host: a.test}]\n");
    ASSERT_TRUE(wi) << wi.message();
    EXPECT_TRUE((*wi)->settings().workload_identity);
    EXPECT_EQ((*wi)->settings().provider_region, "eu-west-1");
}

exchange request(const std::string& query = {}) {
    exchange ex;
    ex.method = "POST";
    ex.host = ex.policy_host = "sqs.us-east-1.amazonaws.com";
    ex.path = ex.raw_path = "/123/q";
    ex.raw_query = query;
    return ex;
}

TEST(AwsAuthTransform, ResignsTheHeaderForm) {
    ::setenv("AWS_AUTH_UNIT_ID", "AKREAL", 1);
    ::setenv("AWS_AUTH_UNIT_SECRET", "real-secret", 1);
    auto t = build(static_keys);
    ASSERT_TRUE(t) << t.message();
    exchange ex = request();
    ex.request_headers.add("Authorization", "AWS4-HMAC-SHA256 Credential=AKFAKE/20260101/us-east-1/sqs/aws4_request, "
                                            "SignedHeaders=host;x-amz-date;x-amz-target, Signature=00");
    ex.request_headers.add("X-Amz-Date", "20260101T000000Z");
    ex.request_headers.add("X-Amz-Target", "AmazonSQS.SendMessage");
    ex.request_headers.add("X-Amz-Security-Token", "fake-token");
    ex.request_headers.add("Content-Length", "2");
    ex.request_body.present = true;
    ex.request_body.data = "{}";
    audit::trace tr;
    ex.current_trace = &tr;
    EXPECT_TRUE((*t)->wants_request_body(ex));
    ASSERT_EQ((*t)->on_request(ex).what, verdict::kind::next);
    EXPECT_FALSE(ex.request_headers.contains("X-Amz-Security-Token"));
    EXPECT_EQ(*ex.request_headers.get("X-Amz-Content-Sha256"), aws::hex_sha256("{}"));
    // Recompute what the origin would: Host + the client's signed headers + the proxy's X-Amz-*.
    aws::request_to_sign check;
    check.method = "POST";
    check.path = "/123/q";
    check.headers.add("Host", ex.host);
    check.headers.add("X-Amz-Target", "AmazonSQS.SendMessage");
    check.headers.add("X-Amz-Content-Sha256", aws::hex_sha256("{}"));
    check.payload_hash = aws::hex_sha256("{}");
    const std::string date(*ex.request_headers.get("X-Amz-Date"));
    std::tm tm{};
    strptime(date.c_str(), "%Y%m%dT%H%M%SZ", &tm);
    aws::sign(check, {"AKREAL", "real-secret", ""}, {"us-east-1", "sqs"}, std::chrono::system_clock::from_time_t(timegm(&tm)));
    EXPECT_EQ(*ex.request_headers.get("Authorization"), *check.headers.get("Authorization"));
    EXPECT_EQ(boost::json::serialize(tr.annotations), R"({"service":"sqs","region":"us-east-1","injected":true})");
}

TEST(AwsAuthTransform, ResignsThePresignedFormAndGatesRegions) {
    ::setenv("AWS_AUTH_UNIT_ID", "AKREAL", 1);
    ::setenv("AWS_AUTH_UNIT_SECRET", "real-secret", 1);
    auto t = build(static_keys);
    ASSERT_TRUE(t) << t.message();
    exchange ex = request("Action=ReceiveMessage&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKFAKE%2F20260101%2Fus-east-1"
                          "%2Fsqs%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=120&X-Amz-SignedHeaders=host"
                          "&X-Amz-Signature=00");
    audit::trace tr;
    ex.current_trace = &tr;
    EXPECT_TRUE((*t)->wants_request_body(ex));  // not S3: the presigned signature covers the body
    ASSERT_EQ((*t)->on_request(ex).what, verdict::kind::next);
    EXPECT_TRUE(ex.raw_query.starts_with("Action=ReceiveMessage&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKREAL%2F"))
        << ex.raw_query;
    EXPECT_NE(ex.raw_query.find("&X-Amz-Expires=120&"), std::string::npos);
    EXPECT_EQ(ex.raw_query.find("AKFAKE"), std::string::npos);

    exchange other = request("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKFAKE%2F20260101%2Fus-west-2%2Fsqs%2Faws4_request");
    audit::trace tr2;
    other.current_trace = &tr2;
    const verdict v = (*t)->on_request(other);
    EXPECT_EQ(v.what, verdict::kind::reject);
    EXPECT_EQ(v.status, 403);
    EXPECT_EQ(v.body, R"({"error":"aws_auth","reason":"region_not_allowed"})");
}

}  // namespace
}  // namespace iron::transforms::aws_auth
