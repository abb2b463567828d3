// Reading token-endpoint answers and building the grants' requests: the OAuth2 error code or
// the HTTP status as the failure reason, never the endpoint's description; lifetimes from
// expires_in (number or string) or an ID token's exp; rotated refresh tokens; tokens with control
// bytes refused; form encoding; fingerprints that change with any value.
#include <chrono>

#include <gtest/gtest.h>

#include "crypto/jwt.hpp"
#include "token_mint/endpoint.hpp"
#include "transforms/oauth_token/oauth_token.hpp"

namespace iron::token_mint {
namespace {

TEST(TokenEndpoint, ReadsAccessTokenAndLifetime) {
    token_call call;
    auto r = read_reply(200, R"({"access_token":"abc","expires_in":"120","refresh_token":"r2"})", call);
    ASSERT_TRUE(r.outcome.ok());
    EXPECT_EQ(*r.outcome.token, "abc");
    EXPECT_EQ(r.outcome.lifetime, std::chrono::seconds(120));
    ASSERT_TRUE(r.refresh_token);
    EXPECT_EQ(*r.refresh_token, "r2");
    r = read_reply(200, "access_token=form%2Btok&expires_in=60", call);  // a form-encoded answer
    ASSERT_TRUE(r.outcome.ok());
    EXPECT_EQ(*r.outcome.token, "form+tok");
    EXPECT_EQ(r.outcome.lifetime, std::chrono::seconds(60));
}

TEST(TokenEndpoint, FailureReasons) {
    token_call call;
    auto r = read_reply(400, R"({"error":"invalid_grant","error_description":"secret XYZ revoked"})", call);
    EXPECT_EQ(r.outcome.reason, "invalid_grant");
    EXPECT_EQ(r.outcome.detail.find("XYZ"), std::string::npos);
    EXPECT_EQ(read_reply(503, "<html>down</html>", call).outcome.reason, "token_endpoint_http_503");
    EXPECT_EQ(read_reply(500, R"({"error":"has spaces <script>"})", call).outcome.reason, "token_endpoint_http_500");
    EXPECT_EQ(read_reply(200, R"({"token_type":"Bearer"})", call).outcome.reason, "mint_failed");
    EXPECT_EQ(read_reply(200, "{\"access_token\":\"a\\r\\nX-Evil: 1\"}", call).outcome.reason, "mint_failed");
}

TEST(TokenEndpoint, IdTokenLifetimeFromExp) {
    token_call call;
    call.token_field = "id_token";
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string jwt = crypto::base64url(R"({"alg":"RS256"})") + "." +
                            crypto::base64url(R"({"exp":)" + std::to_string(now + 1800) + "}") + ".sig";
    auto r = read_reply(200, R"({"id_token":")" + jwt + R"("})", call);
    ASSERT_TRUE(r.outcome.ok());
    EXPECT_NEAR(static_cast<double>(r.outcome.lifetime.count()), 1800.0, 5.0);
    EXPECT_EQ(jwt_expiry("not-a-jwt"), 0);
}

TEST(TokenEndpoint, FormAndFingerprint) {
    EXPECT_EQ(form_body({{"grant_type", "password"}, {"password", "p&w =x"}}), "grant_type=password&password=p%26w%20%3Dx");
    EXPECT_EQ(form_field("a=1&assertion=x%2By", "assertion"), "x+y");
    fingerprint_builder a, b, c;
    a.add("client_secret", "s1");
    b.add("client_secret", "s2");
    c.add("client_secret", "s1");
    const auto fa = a.finish(), fb = b.finish(), fc = c.finish();
    EXPECT_NE(fa, fb);
    EXPECT_EQ(fa, fc);
    EXPECT_EQ(fa.find("s1"), std::string::npos);
}

TEST(OAuthGrants, FormBodies) {
    using transforms::oauth_token::build_call;
    transforms::oauth_token::token_entry e;
    e.token_endpoint = "https://idp.test/token";
    e.scopes = {"a", "b"};
    e.grant = "client_credentials";
    std::vector<std::pair<std::string, std::string>> v = {{"client_id", "id"}, {"client_secret", "s"}};
    auto call = build_call(e, v, {{"x-api-key", "k"}}, nullptr);
    ASSERT_TRUE(call);
    EXPECT_EQ((*call)->body, "grant_type=client_credentials&scope=a%20b&client_id=id&client_secret=s");
    EXPECT_EQ((*call)->headers.get("x-api-key").value_or(""), "k");
    e.grant = "refresh_token";
    v = {{"client_id", "id"}, {"refresh_token", "r1"}};
    call = build_call(e, v, {}, secrets::make_value("r2"));  // the rotated one wins
    ASSERT_TRUE(call);
    EXPECT_EQ((*call)->body, "grant_type=refresh_token&refresh_token=r2&client_id=id");
    e.grant = "jwt_bearer";
    v = {{"issuer", "i"}, {"private_key", "not a key"}, {"subject", "s"}};
    call = build_call(e, v, {}, nullptr);
    ASSERT_FALSE(call);
    EXPECT_EQ(call.message().find("not a key"), std::string::npos);
}

}  // namespace
}  // namespace iron::token_mint
