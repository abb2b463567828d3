// The AWS credential chain's readers (shared credentials file, container / IMDS JSON, STS XML,
// timestamps), the link order for the local links, and the cache: single-flight resolution,
// refresh before expiry, expired credentials never served.
#include "aws/credential_cache.hpp"
#include "aws/credential_chain.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace iron::aws {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::system_clock;

TEST(CredentialChain, SharedCredentialsFile) {
    const std::string text =
        "# comment\n[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key=sdefault\n\n"
        "[ ci ]\r\n; other\naws_access_key_id=AKCI\naws_secret_access_key = sci \naws_session_token = tci\nregion=x\n"
        "[half]\naws_access_key_id=AKHALF\n";
    auto d = parse_shared_credentials(text, "default");
    ASSERT_TRUE(d) << d.message();
    EXPECT_EQ(d->access_key_id, "AKDEFAULT");
    EXPECT_EQ(d->secret_access_key, "sdefault");
    EXPECT_EQ(d->session_token, "");
    auto ci = parse_shared_credentials(text, "ci");
    ASSERT_TRUE(ci) << ci.message();
    EXPECT_EQ(ci->access_key_id, "AKCI");
    EXPECT_EQ(ci->secret_access_key, "sci");
    EXPECT_EQ(ci->session_token, "tci");
    EXPECT_EQ(parse_shared_credentials(text, "nope").message(), "profile nope not found");
    auto half = parse_shared_credentials(text, "half");
    ASSERT_FALSE(half);
    EXPECT_EQ(half.message().find("AKHALF"), std::string::npos);
}

TEST(CredentialChain, ContainerAndImdsJson) {
    auto c = parse_credentials_json(
        R"({"AccessKeyId":"ASIA1","SecretAccessKey":"s1","Token":"t1","Expiration":"2026-12-06T10:00:00Z","RoleArn":"r"})");
    ASSERT_TRUE(c) << c.message();
    EXPECT_EQ(c->creds.access_key_id, "ASIA1");
    EXPECT_EQ(c->creds.session_token, "t1");
    ASSERT_TRUE(c->expiration);
    EXPECT_EQ(clock::to_time_t(*c->expiration), 1796551200);
    EXPECT_TRUE(parse_credentials_json(R"({"Code":"Success","AccessKeyId":"A","SecretAccessKey":"S"})"));
    EXPECT_EQ(parse_credentials_json(R"({"Code":"Failed","AccessKeyId":"A","SecretAccessKey":"S"})").message(),
              "credentials reply says Code Failed");
    EXPECT_FALSE(parse_credentials_json(R"({"AccessKeyId":"A"})"));
    EXPECT_FALSE(parse_credentials_json("not json"));
    auto bad = parse_credentials_json(R"({"AccessKeyId":"A","SecretAccessKey":"topsecret","Expiration":"soon"})");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message().find("topsecret"), std::string::npos);
}

TEST(CredentialChain, StsReplyAndError) {
    const std::string ok =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials>\n  <SessionToken>tok&amp;en</SessionToken>\n"
        "  <SecretAccessKey>sec</SecretAccessKey><Expiration>2026-12-06T10:00:00.123Z</Expiration>"
        "<AccessKeyId>ASIA2</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    auto c = parse_assume_role_reply(ok);
    ASSERT_TRUE(c) << c.message();
    EXPECT_EQ(c->creds.session_token, "tok&en");
    EXPECT_EQ(c->creds.access_key_id, "ASIA2");
    EXPECT_EQ(clock::to_time_t(*c->expiration), 1796551200);
    EXPECT_FALSE(parse_assume_role_reply("<x/>"));
    EXPECT_FALSE(parse_assume_role_reply("<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
                                         "<SessionToken>T</SessionToken></Credentials>"));  // no Expiration
    EXPECT_EQ(sts_error_text(403, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                                  "<Message>Not authorized</Message></Error></ErrorResponse>"),
              "status 403: AccessDenied: Not authorized");
    EXPECT_EQ(sts_error_text(500, "oops"), "status 500");
}

TEST(CredentialChain, Iso8601) {
    EXPECT_EQ(clock::to_time_t(*parse_iso8601("2026-12-06T10:00:00Z")), 1796551200);
    EXPECT_EQ(clock::to_time_t(*parse_iso8601("2026-12-06T11:30:00+01:30")), 1796551200);
    EXPECT_EQ(clock::to_time_t(*parse_iso8601("2026-12-06T09:00:00.5-01:00")), 1796551200);
    EXPECT_FALSE(parse_iso8601("2026-12-06 10:00:00"));
    EXPECT_FALSE(parse_iso8601("2026-12-06T10:00:00"));
    EXPECT_FALSE(parse_iso8601("tomorrow"));
}

TEST(CredentialChain, ContainerHosts) {
    for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"})
        EXPECT_TRUE(container_host_allowed(h)) << h;
    for (const char* h : {"10.0.0.1", "169.254.169.254", "127.0.0.1.evil.test", "example.com"})
        EXPECT_FALSE(container_host_allowed(h)) << h;
}

// Sets variables for one test and restores them.
struct scoped_env {
    std::vector<std::pair<std::string, std::optional<std::string>>> saved;
    void set(const char* k, const char* v) {
        const char* old = std::getenv(k);
        saved.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
        if (v) ::setenv(k, v, 1);
        else ::unsetenv(k);
    }
    ~scoped_env() {
        for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
            if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else ::unsetenv(it->first.c_str());
        }
    }
};

TEST(CredentialChain, LocalLinksInOrder) {
    test::temp_dir dir;
    std::ofstream(dir / "creds") << "[p]\naws_access_key_id=AKFILE\naws_secret_access_key=sfile\n";
    scoped_env env;
    for (const char* k : {"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_SESSION_TOKEN"})
        env.set(k, nullptr);
    env.set("AWS_EC2_METADATA_DISABLED", "true");
    env.set("AWS_SHARED_CREDENTIALS_FILE", (dir / "creds").c_str());
    env.set("AWS_PROFILE", "p");
    env.set("AWS_ACCESS_KEY_ID", "AKENV");
    env.set("AWS_SECRET_ACCESS_KEY", "senv");
    outbound::cancel_handle cancel;
    auto first = resolve_default_chain({}, cancel);
    ASSERT_TRUE(first) << first.message();
    EXPECT_EQ(first->provider, "environment");
    EXPECT_EQ(first->creds.access_key_id, "AKENV");
    env.set("AWS_SECRET_ACCESS_KEY", "");  // empty counts as unset
    auto second = resolve_default_chain({}, cancel);
    ASSERT_TRUE(second) << second.message();
    EXPECT_EQ(second->provider, "shared_file");
    EXPECT_EQ(second->creds.access_key_id, "AKFILE");
    EXPECT_FALSE(second->expiration);
    env.set("AWS_PROFILE", "missing");
    auto none = resolve_default_chain({}, cancel);
    ASSERT_FALSE(none);
    EXPECT_NE(none.message().find("no AWS credentials found"), std::string::npos) << none.message();
    env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds");
    EXPECT_NE(resolve_default_chain({}, cancel).message().find("not a loopback"), std::string::npos);
}

TEST(CredentialCache, SingleFlightRefreshAndExpiry) {
    std::atomic<int> calls{0};
    std::atomic<int> lifetime_ms{60 * 60 * 1000};
    credential_cache cache([&](outbound::cancel_handle&) -> result<timed_credentials> {
        const int n = ++calls;
        std::this_thread::sleep_for(50ms);  // long enough for every waiter to pile up
        timed_credentials t;
        t.creds = {"AK" + std::to_string(n), "S", "T"};
        t.expiration = clock::now() + std::chrono::milliseconds(lifetime_ms.load());
        return t;
    });
    EXPECT_TRUE(cache.needs_wait());
    EXPECT_EQ(calls.load(), 0);  // nothing before a demand
    outbound::cancel_handle cancel;
    std::vector<std::thread> threads;
    std::atomic<int> got{0};
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&] {
            if (auto c = cache.get_blocking(cancel, 5s); c && c->access_key_id == "AK1") ++got;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(got.load(), 8);
    EXPECT_EQ(calls.load(), 1);
    EXPECT_FALSE(cache.needs_wait());
    std::this_thread::sleep_for(1200ms);  // demands made during the resolution asked for no second one
    EXPECT_EQ(calls.load(), 1);

    // Short-lived credentials are replaced before they expire, without anyone asking.
    lifetime_ms = 1500;
    cache.reload();
    for (int i = 0; i < 100 && calls.load() < 3; ++i) std::this_thread::sleep_for(50ms);
    EXPECT_GE(calls.load(), 3);
    auto now = cache.current();
    ASSERT_TRUE(now) << now.message();
    EXPECT_NE(now->access_key_id, "AK1");
}

TEST(CredentialCache, ExpiredAreNeverServedAndFailuresAreReported) {
    std::atomic<bool> fail{false};
    credential_cache cache([&](outbound::cancel_handle&) -> result<timed_credentials> {
        if (fail) return make_error("container: endpoint answered 500");
        timed_credentials t;
        t.creds = {"AK", "S", ""};
        t.expiration = clock::now() - 1s;  // already expired
        return t;
    });
    outbound::cancel_handle cancel;
    auto c = cache.get_blocking(cancel, 5s);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.message(), "AWS credentials expired");
    fail = true;
    std::this_thread::sleep_for(1100ms);  // the thread spaces resolutions a second apart
    auto f = cache.get_blocking(cancel, 5s);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.message(), "container: endpoint answered 500");
}

}  // namespace
}  // namespace iron::aws
