// Google Secret Manager resource names and the credential pieces (ADC parsing, base64url).
#include "secrets/gcp_sm.hpp"

#include <gtest/gtest.h>

#include "gcp/credentials.hpp"

namespace iron::secrets {
namespace {

TEST(GcpSecretManager, ResourceNames) {
    EXPECT_EQ(*gcp_secret_version("projects/p/secrets/s"), "projects/p/secrets/s/versions/latest");
    EXPECT_EQ(*gcp_secret_version("projects/p/secrets/s/versions/7"), "projects/p/secrets/s/versions/7");
    for (const char* bad : {"p/s", "projects/p/secrets", "projects//secrets/s", "projects/p/secrets/s/versions/",
                            "projects/p/keys/s", "projects/p/secrets/s/aliases/x"})
        EXPECT_FALSE(gcp_secret_version(bad)) << bad;
}

TEST(GcpCredentials, ParseAndBase64Url) {
    EXPECT_EQ(gcp::base64url("\xfb\xff"), "-_8");
    EXPECT_EQ(gcp::base64url("abc"), "YWJj");
    EXPECT_EQ(gcp::base64url("ab"), "YWI");
    auto user = gcp::parse_adc(R"({"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"})");
    ASSERT_TRUE(user) << user.message();
    auto body = gcp::token_request_body(*user, "scope", std::chrono::system_clock::now());
    ASSERT_TRUE(body);
    EXPECT_EQ(*body, "grant_type=refresh_token&client_id=c&client_secret=s&refresh_token=r");
    EXPECT_FALSE(gcp::parse_adc(R"({"type":"external_account"})"));
    EXPECT_FALSE(gcp::parse_adc("not json"));
    auto sa = gcp::parse_adc(R"({"type":"service_account","client_email":"e","private_key":"not a pem"})");
    ASSERT_TRUE(sa);
    auto signed_body = gcp::token_request_body(*sa, "scope", std::chrono::system_clock::now());
    ASSERT_FALSE(signed_body);
    EXPECT_EQ(signed_body.message(), "private_key is not a PEM private key");  // never quotes the key
}

}  // namespace
}  // namespace iron::secrets
