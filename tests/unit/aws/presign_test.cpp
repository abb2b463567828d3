// SigV4's presigned-URL form and S3's as-sent path. Expected signatures: AWS's documented presigned
// example, and botocore's S3SigV4QueryAuth / SigV4QueryAuth for the same inputs (the script that
// printed them builds an AWSRequest, sets context["timestamp"] and signs it as add_auth does).
#include "aws/sigv4.hpp"

#include <gtest/gtest.h>

namespace iron::aws {
namespace {

std::chrono::system_clock::time_point at(std::time_t t) { return std::chrono::system_clock::from_time_t(t); }
const auto suite_time = at(1440938160);  // 2015-08-30T12:36:00Z
const credentials suite_creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

std::string param(const std::string& query, const std::string& key) {
    for (const auto& [k, v] : query_params(query))
        if (k == key) return v;
    return "<absent>";
}

request_to_sign presigned(std::string host, std::string path, std::string query, bool s3) {
    request_to_sign req;
    req.method = "GET";
    req.path = std::move(path);
    req.query = std::move(query);
    req.headers.add("Host", std::move(host));
    req.payload_hash = std::string(unsigned_payload);
    req.path_as_sent = s3;
    return req;
}

TEST(SigV4Presign, AwsDocumentedExample) {
    // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", GET /test.txt.
    auto req = presigned("examplebucket.s3.amazonaws.com", "/test.txt", "", true);
    presign(req, {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""}, {"us-east-1", "s3"}, at(1369353600),
            std::chrono::seconds(86400));
    EXPECT_EQ(req.query,
              "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
              "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
              "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Presign, AgreesWithBotocore) {
    auto a = presigned("examplebucket.s3.amazonaws.com", "/test%20dir/a~b.txt", "versionId=v1&response-content-type=text%2Fplain", true);
    presign(a, suite_creds, {"us-east-1", "s3"}, suite_time, std::chrono::seconds(300));
    EXPECT_EQ(param(a.query, "X-Amz-Signature"), "19ea8317c66de456db1589224915b1d0411c9da49242543ace1f9dec2463d516");

    auto b = presigned("examplebucket.s3.amazonaws.com", "/key", "", true);
    credentials with_token = suite_creds;
    with_token.session_token = "session/token+value==";
    presign(b, with_token, {"us-east-1", "s3"}, suite_time, std::chrono::seconds(300));
    EXPECT_EQ(param(b.query, "X-Amz-Security-Token"), "session/token+value==");
    EXPECT_NE(b.query.find("X-Amz-Security-Token=session%2Ftoken%2Bvalue%3D%3D"), std::string::npos);
    EXPECT_EQ(param(b.query, "X-Amz-Signature"), "c623b23ca0551937bcabef5027fe58a1db95a032c34e771132fe2b207d3d3c1e");

    // Other services presign the body's hash (botocore's SigV4QueryAuth), here an empty body's.
    auto c = presigned("sqs.us-east-1.amazonaws.com", "/123/q", "Action=ReceiveMessage", false);
    c.payload_hash = hex_sha256("");
    presign(c, suite_creds, {"us-east-1", "sqs"}, suite_time, std::chrono::seconds(60));
    EXPECT_EQ(param(c.query, "X-Amz-Signature"), "ce3b263d0a4807341d37c9c412b7ef26dd036a9635f169b6a9208fcde9ce47d3");
}

TEST(SigV4Presign, ReplacesTheClientsAuthParametersAndKeepsTheRest) {
    const std::string client =
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=v%2F1&X-Amz-Credential=FAKE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20150830T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Security-Token=fake-token"
        "&X-Amz-Signature=00&partNumber=2";
    auto req = presigned("b.s3.amazonaws.com", "/k", client, true);
    presign(req, suite_creds, {"us-east-1", "s3"}, suite_time, std::chrono::seconds(60));
    EXPECT_TRUE(req.query.starts_with("versionId=v%2F1&partNumber=2&X-Amz-Algorithm=AWS4-HMAC-SHA256&")) << req.query;
    EXPECT_EQ(req.query.find("FAKE"), std::string::npos);
    EXPECT_EQ(req.query.find("fake-token"), std::string::npos);  // no session token: none sent
    EXPECT_EQ(param(req.query, "X-Amz-Credential"), "AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request");
    const auto sig = req.query.rfind("&X-Amz-Signature=");
    EXPECT_EQ(sig, req.query.size() - 17 - 64);  // last, once
    EXPECT_EQ(req.query.find("X-Amz-Signature="), sig + 1);
}

TEST(SigV4Presign, QueryHelpers) {
    const auto params = query_params("a=1&&b&c=%2F+x&=v");
    ASSERT_EQ(params.size(), 4u);
    EXPECT_EQ(params[1], (std::pair<std::string, std::string>{"b", ""}));
    EXPECT_EQ(params[2].second, "/+x");
    EXPECT_EQ(remove_query_params("a=1&X-Amz-Date=2&b=%20&X-Amz%2DDate=3", {"X-Amz-Date"}), "a=1&b=%20");
}

TEST(SigV4, S3SignsThePathAsSent) {
    request_to_sign req;
    req.method = "GET";
    req.path = "/bucket/a%20b/../c//d";
    req.headers.add("Host", "h");
    req.payload_hash = std::string(unsigned_payload);
    const auto other = canonical_request(req);
    EXPECT_TRUE(other.starts_with("GET\n/bucket/c/d\n")) << other;  // normalised (and encoded again)
    req.path = "/bucket/a%20b";
    EXPECT_TRUE(canonical_request(req).starts_with("GET\n/bucket/a%2520b\n"));
    req.path_as_sent = true;
    EXPECT_TRUE(canonical_request(req).starts_with("GET\n/bucket/a%20b\n"));
    req.path = "/bucket/a/../b//c";
    EXPECT_TRUE(canonical_request(req).starts_with("GET\n/bucket/a/../b//c\n"));
}

}  // namespace
}  // namespace iron::aws
