#include "admin/routes.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace iron::admin {
namespace {

namespace bhttp = boost::beast::http;

request make(bhttp::verb v, const char* target, const char* auth = nullptr) {
    request r{v, target, 11};
    if (auth) r.set(bhttp::field::authorization, auth);
    return r;
}

TEST(AdminRoutes, BearerMatches) {
    EXPECT_TRUE(bearer_matches("Bearer tok", "tok"));
    EXPECT_FALSE(bearer_matches("bearer tok", "tok"));  // the scheme is case-sensitive, as Go
    EXPECT_FALSE(bearer_matches("Bearer tok2", "tok"));
    EXPECT_FALSE(bearer_matches("Bearer to", "tok"));
    EXPECT_FALSE(bearer_matches("Bearer ", ""));  // an empty token never matches
    EXPECT_FALSE(bearer_matches("", "tok"));
}

TEST(AdminRoutes, Metrics) {
    auto h = metrics_routes();
    auto res = h(make(bhttp::verb::delete_, "/healthz"));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "OK");
    res = h(make(bhttp::verb::get, "/metrics?x=1"));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
    res = h(make(bhttp::verb::get, "/"));
    EXPECT_EQ(res.result_int(), 404u);
    EXPECT_EQ(res.body(), "404 page not found\n");
}

TEST(AdminRoutes, Management) {
    int reloads = 0;
    bool fail = false;
    auto h = management_routes("tok", [&]() -> result<void> {
        ++reloads;
        if (fail) return make_error("f.yaml:1:1: bad");
        return ok();
    });
    auto res = h(make(bhttp::verb::get, "/v1/reload"));
    EXPECT_EQ(res.result_int(), 401u);  // auth before the method
    EXPECT_EQ(res.body(), "{\"error\":\"unauthorized\"}\n");
    res = h(make(bhttp::verb::get, "/v1/reload", "Bearer tok"));
    EXPECT_EQ(res.result_int(), 405u);
    EXPECT_EQ(res[bhttp::field::allow], "POST");
    res = h(make(bhttp::verb::post, "/v1/reload", "Bearer tok"));
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "{\"status\":\"ok\"}\n");
    fail = true;
    res = h(make(bhttp::verb::post, "/v1/reload", "Bearer tok"));
    EXPECT_EQ(res.result_int(), 422u);
    EXPECT_EQ(res.body(), "{\"error\":\"f.yaml:1:1: bad\"}\n");
    EXPECT_EQ(reloads, 2);
    auto throwing = management_routes("tok", []() -> result<void> { throw std::runtime_error("boom"); });
    res = throwing(make(bhttp::verb::post, "/v1/reload", "Bearer tok"));
    EXPECT_EQ(res.result_int(), 500u);
    EXPECT_EQ(res.body(), "{\"error\":\"internal error\"}\n");
    res = h(make(bhttp::verb::get, "/v1/status", "Bearer tok"));
    EXPECT_EQ(res.result_int(), 404u);
    EXPECT_EQ(res.body(), "{\"error\":\"status is unavailable in standalone mode\"}\n");
    res = h(make(bhttp::verb::get, "/v1/sync", "Bearer tok"));
    EXPECT_EQ(res.result_int(), 405u);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
}

}  // namespace
}  // namespace iron::admin
