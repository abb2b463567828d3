// The MCP gateway's parts: config decoding (upstream URL, credentials, formatter), route matching,
// and what routing does to a request (target, Host, credentials, query merge, audit group).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "audit/record.hpp"
#include "mcp/gateway.hpp"
#include "mcp/record.hpp"

namespace iron::mcp {
namespace {

std::optional<gateway> load(const std::string& yaml) {
    auto g = parse_gateway(YAML::Load(yaml), "t.yaml");
    EXPECT_TRUE(g) << (g ? "" : g.message());
    return g ? std::move(*g) : std::nullopt;
}

std::string load_error(const std::string& yaml) {
    auto g = parse_gateway(YAML::Load(yaml), "t.yaml");
    return g ? std::string() : g.message();
}

pipeline::exchange request(std::string host, std::string path, std::string query = {}) {
    pipeline::exchange ex;
    ex.method = "POST";
    ex.host = host;
    ex.policy_host = host;
    ex.path = path;
    ex.raw_path = path;
    ex.raw_query = std::move(query);
    return ex;
}

class McpGateway : public ::testing::Test {
protected:
    void SetUp() override {
        setenv("GW_UNIT_TOKEN", "tok", 1);
        setenv("GW_UNIT_KEY", "k y", 1);
        unsetenv("GW_UNIT_UNSET");
    }
};

TEST_F(McpGateway, RoutesTheRequestWithCredentials) {
    auto g = load(R"(
routes:
  - name: first
    rules: [{host: mcp.internal, paths: ["/mcp"]}]
    upstream: "https://[::1]:8443/v1/mcp?v=1"
    credentials:
      - source: {type: env, var: GW_UNIT_TOKEN}
        inject: {header: x-api-token, formatter: 'Bearer {{ .Value }} {{ base64 "u:" .Value }}'}
      - source: {type: env, var: GW_UNIT_KEY}
        inject: {query_param: key}
      - source: {type: env, var: GW_UNIT_UNSET}
        inject: {header: X-Optional}
        require: false
  - name: second
    rules: [{host: mcp.internal}]
    upstream: http://127.0.0.1:9
)");
    ASSERT_TRUE(g);
    auto ex = request("mcp.internal", "/mcp", "a=1&key=forged&b=2");
    const gateway_route* r = g->match(ex);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->name, "first");
    mcp_record rec("s");
    ASSERT_TRUE(route_request(*r, ex, rec));
    ASSERT_TRUE(ex.reroute);
    EXPECT_EQ(ex.reroute->host, "::1");
    EXPECT_EQ(ex.reroute->port, 8443);
    EXPECT_TRUE(ex.reroute->tls);
    EXPECT_EQ(ex.reroute->authority, "[::1]:8443");
    EXPECT_EQ(ex.reroute->target, "/v1/mcp?v=1&a=1&b=2&key=k%20y");
    EXPECT_EQ(ex.reroute->headers.get("X-Api-Token").value_or(""), "Bearer tok dTp0b2s=");
    EXPECT_FALSE(ex.request_headers.contains("X-Api-Token"));  // only on the outgoing request
    audit::record out;
    rec.write(out);
    const auto& gw = out.mcp->at("gateway").as_object();
    EXPECT_EQ(gw.at("route").as_string(), "first");
    EXPECT_EQ(gw.at("upstream").as_string(), "https://[::1]:8443/v1/mcp?v=1");
    const auto& ids = gw.at("credentials_injected").as_array();
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0].as_string(), "GW_UNIT_TOKEN:header:X-Api-Token");
    EXPECT_EQ(ids[1].as_string(), "GW_UNIT_KEY:query:key");

    auto other = request("mcp.internal", "/other");
    EXPECT_EQ(g->match(other)->name, "second");
    mcp_record rec2("s");
    ASSERT_TRUE(route_request(*g->match(other), other, rec2));
    EXPECT_EQ(other.reroute->target, "/");
    EXPECT_EQ(other.reroute->authority, "127.0.0.1:9");
    EXPECT_EQ(other.reroute->port, 9);
    EXPECT_FALSE(other.reroute->tls);
    EXPECT_EQ(g->match(request("elsewhere.test", "/mcp")), nullptr);
}

TEST_F(McpGateway, RequiredCredentialUnavailableFails) {
    auto g = load(R"(
routes:
  - name: r
    rules: [{host: h}]
    upstream: http://127.0.0.1:9/mcp
    credentials:
      - source: {type: env, var: GW_UNIT_UNSET}
        inject: {header: Authorization}
)");
    ASSERT_TRUE(g);
    auto ex = request("h", "/mcp");
    mcp_record rec("s");
    auto routed = route_request(*g->match(ex), ex, rec);
    ASSERT_FALSE(routed);
    EXPECT_NE(routed.message().find("gateway credential \"GW_UNIT_UNSET\" unavailable"), std::string::npos);
    EXPECT_FALSE(ex.reroute);
}

TEST_F(McpGateway, NoRoutesIsNoGateway) {
    EXPECT_FALSE(load("routes: []"));
    EXPECT_FALSE(load("{}"));
}

TEST_F(McpGateway, Errors) {
    const std::string route = "routes:\n  - {name: r, rules: [{host: h}], upstream: ";
    EXPECT_NE(load_error(route + "'http://x/'}\n  - {name: r, rules: [{host: h}], upstream: 'http://x/'}").find(
                  "t.yaml:3:5: mcp_gateway.routes[1]: duplicate route name \"r\""),
              std::string::npos);
    EXPECT_NE(load_error(route + "'x.test'}").find("upstream must use http or https"), std::string::npos);
    EXPECT_NE(load_error(route + "'http://'}").find("upstream must include a host"), std::string::npos);
    EXPECT_NE(load_error(route + "'http://x:99999/'}").find("invalid port"), std::string::npos);
    EXPECT_NE(load_error(route + "'http://x/#a'}").find("must not include a fragment"), std::string::npos);
    EXPECT_NE(load_error(route + "'http://u:p@x/'}").find("must not include userinfo"), std::string::npos);
    EXPECT_NE(load_error(route + "'http://x/', credentials: [{inject: {header: A}}]}").find("source: is required"),
              std::string::npos);
    EXPECT_NE(load_error("routes: [{name: r, rules: [{host: h}], upstream: 'http://x', credentials: [{source: {type: "
                         "env, var: V}, inject: {header: A, formatter: '{{ printf \"%d\" .Value }}'}}]}]")
                  .find("parsing formatter"),
              std::string::npos);
    EXPECT_NE(load_error("routes: {}").find("expected a list"), std::string::npos);
    EXPECT_NE(load_error("routez: []").find("unknown key"), std::string::npos);
}

}  // namespace
}  // namespace iron::mcp
