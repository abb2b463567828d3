// SigV4 against AWS's published test-suite cases. The expected Authorization values come from
// botocore (an independent implementation): tests/unit/aws/sigv4_vectors.py prints them, and
// get-vanilla's signature is the one AWS publishes (5fa00fa3…).
#include "aws/sigv4.hpp"

#include <gtest/gtest.h>

#include <map>

namespace iron::aws {
namespace {

const credentials suite_creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const std::string sts_token =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/"
    "qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+"
    "xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

std::chrono::system_clock::time_point suite_time() {
    return std::chrono::system_clock::from_time_t(1440938160);  // 2015-08-30T12:36:00Z
}

const std::map<std::string, std::string> expected = {
{"get-vanilla", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
{"get-vanilla-query-order-key-case", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
{"get-vanilla-query-unreserved", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
{"get-header-value-trim", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
{"get-header-key-duplicate", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
{"get-slashes", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
{"get-space", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
{"get-relative-relative", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
{"post-x-www-form-urlencoded", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
{"post-sts-token", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
{"secretsmanager-get-secret-value", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=33ee10d0501c81da8cf09f325063888876be4b448208968f564dacd2e3d75a65"},
};

struct suite_case {
    std::string name, method, target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool token = false;
};

std::string authorization_for(const suite_case& c) {
    request_to_sign req;
    req.method = c.method;
    const auto q = c.target.find('?');
    req.path = c.target.substr(0, q);
    if (q != std::string::npos) req.query = c.target.substr(q + 1);
    req.headers.add("Host", "example.amazonaws.com");
    for (const auto& [k, v] : c.headers) req.headers.add(k, v);
    req.payload_hash = hex_sha256(c.body);
    credentials creds = suite_creds;
    if (c.token) creds.session_token = sts_token;
    sign(req, creds, {"us-east-1", "service"}, suite_time());
    return std::string(*req.headers.get("Authorization"));
}

TEST(SigV4, AwsTestSuiteCasesAgreeWithBotocore) {
    const std::vector<suite_case> cases = {
        {"get-vanilla", "GET", "/", {}, ""},
        {"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", {}, ""},
        {"get-vanilla-query-unreserved", "GET",
         "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
         {}, ""},
        {"get-header-value-trim", "GET", "/", {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, ""},
        {"get-header-key-duplicate", "GET", "/", {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, ""},
        {"get-slashes", "GET", "//example//", {}, ""},
        {"get-space", "GET", "/example space/", {}, ""},
        {"get-relative-relative", "GET", "/example1/example2/../..", {}, ""},
        {"post-x-www-form-urlencoded", "POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1"},
        {"post-sts-token", "POST", "/", {}, "", true},
        {"secretsmanager-get-secret-value", "POST", "/",
         {{"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", "secretsmanager.GetSecretValue"}},
         "{\"SecretId\":\"prod/api-key\"}"},
    };
    ASSERT_EQ(cases.size(), expected.size());
    for (const auto& c : cases) EXPECT_EQ(authorization_for(c), expected.at(c.name)) << c.name;
}

TEST(SigV4, Pieces) {
    EXPECT_EQ(amz_date(suite_time()), "20150830T123600Z");
    EXPECT_EQ(hex_sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // AWS's documented signing-key derivation example (secret, 20120215, us-east-1, iam).
    const std::string key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", {"us-east-1", "iam"});
    std::string hex;
    for (unsigned char c : key) {
        static constexpr char d[] = "0123456789abcdef";
        hex += d[c >> 4];
        hex += d[c & 15];
    }
    EXPECT_EQ(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    EXPECT_EQ(canonical_uri("/a%20b/./c/../d"), "/a%2520b/d");  // non-S3: encoded once more
    EXPECT_EQ(canonical_query("b=2&a=x%20y&c=%2f&a=1"), "a=1&a=x%20y&b=2&c=%2F");
    EXPECT_EQ(canonical_query("flag&x="), "flag=&x=");
}

TEST(SigV4, SessionTokenAndReSigningReplaceEarlierValues) {
    request_to_sign req;
    req.method = "POST";
    req.headers.add("Host", "h");
    req.headers.add("authorization", "AWS4-HMAC-SHA256 Credential=OLD");
    req.headers.add("x-amz-date", "19990101T000000Z");
    req.payload_hash = hex_sha256("");
    sign(req, {"AK", "SK", "TOKEN"}, {"eu-west-1", "ssm"}, suite_time());
    int auth = 0;
    for (const auto& e : req.headers.entries()) auth += core::iequals(e.name, "Authorization") ? 1 : 0;
    EXPECT_EQ(auth, 1);
    EXPECT_EQ(*req.headers.get("X-Amz-Date"), "20150830T123600Z");
    EXPECT_EQ(*req.headers.get("X-Amz-Security-Token"), "TOKEN");
    const auto a = std::string(*req.headers.get("Authorization"));
    EXPECT_NE(a.find("Credential=AK/20150830/eu-west-1/ssm/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="),
              std::string::npos) << a;
    EXPECT_EQ(a.find("SK"), std::string::npos);
}

}  // namespace
}  // namespace iron::aws
