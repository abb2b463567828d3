// The grpc transform's config parsing and its message conversion (exchange → transform.v1 and the
// service's answers back). The calls themselves are exercised end to end against a real service
// in tests/e2e/test_grpc_transform.py.
#include <fstream>

#include <gtest/gtest.h>

#include "config/yaml_util.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"
#include "transforms/grpc/apply.hpp"
#include "transforms/grpc/convert.hpp"
#include "transforms/grpc/grpc_transform.hpp"

namespace iron::transforms::grpcsvc {
namespace {

result<std::unique_ptr<grpc_transform>> parse(const std::string& yaml) {
    return grpc_transform::from_config(YAML::Load(yaml), config::yaml_ctx{"f.yaml", "transforms[0].config"});
}

std::string error_of(const std::string& yaml) {
    auto t = parse(yaml);
    return t ? std::string("(parsed)") : t.message();
}

TEST(GrpcConfig, Defaults) {
    auto t = parse("{name: p, target: '127.0.0.1:50051'}");
    ASSERT_TRUE(t) << t.message();
    const auto& s = (*t)->settings();
    EXPECT_EQ((*t)->name(), "p");
    EXPECT_EQ(s.target, "127.0.0.1:50051");
    EXPECT_FALSE(s.tls.enabled);
    EXPECT_FALSE(s.send_request_body);
    EXPECT_FALSE(s.send_response_body);
    EXPECT_EQ(s.timeout, std::chrono::seconds(5));
    EXPECT_EQ(s.on_failure, failure_mode::deny);
}

TEST(GrpcConfig, AllKeys) {
    auto t = parse("{name: p, target: 'dns:///svc:1', send_request_body: true, send_response_body: true, "
                   "timeout: 250ms, failure_mode: allow, rules: [{host: a.test}]}");
    ASSERT_TRUE(t) << t.message();
    const auto& s = (*t)->settings();
    EXPECT_TRUE(s.send_request_body && s.send_response_body);
    EXPECT_EQ(s.timeout, std::chrono::milliseconds(250));
    EXPECT_EQ(s.on_failure, failure_mode::allow);
    pipeline::exchange ex;
    ex.method = "GET";
    ex.policy_host = "b.test";
    EXPECT_FALSE((*t)->wants_request_body(ex));
    EXPECT_FALSE((*t)->awaits_response(ex));
    ex.policy_host = "a.test";
    EXPECT_TRUE((*t)->wants_request_body(ex));
    EXPECT_TRUE((*t)->wants_response_body(ex));
    EXPECT_TRUE((*t)->awaits_request(ex));
}

TEST(GrpcConfig, NoRulesMeansEveryRequest) {
    auto t = parse("{name: p, target: 'x:1', send_request_body: true}");
    ASSERT_TRUE(t);
    pipeline::exchange ex;
    ex.policy_host = "anything.example";
    EXPECT_TRUE((*t)->awaits_request(ex));
    EXPECT_TRUE((*t)->wants_request_body(ex));
    EXPECT_FALSE((*t)->wants_response_body(ex));
}

TEST(GrpcConfig, Errors) {
    EXPECT_NE(error_of("{target: 'x:1'}").find("grpc transform: name is required"), std::string::npos);
    EXPECT_NE(error_of("{name: n}").find("grpc transform \"n\": target is required"), std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', failure_mode: open}").find("invalid failure_mode \"open\""),
              std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', timeout: -1s}").find("timeout must be positive"), std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', timeout: later}").find("timeout"), std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', extra: 1}").find("unknown key \"extra\""), std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', tls: {enabled: true, verify: no}}").find("unknown key \"verify\""),
              std::string::npos);
}

TEST(GrpcConfig, TlsFiles) {
    test::test_ca ca;
    ASSERT_TRUE(ca.ok());
    const std::string empty = ca.dir() / "empty.pem";
    std::ofstream(empty) << "no certificate here\n";
    EXPECT_NE(error_of("{name: n, target: 'x:1', tls: {enabled: true, ca_cert: " + empty + "}}")
                  .find("grpc transform \"n\": ca_cert contains no valid certificates"),
              std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', tls: {enabled: true, ca_cert: /nonexistent/ca.pem}}")
                  .find("reading ca_cert"),
              std::string::npos);
    EXPECT_NE(error_of("{name: n, target: 'x:1', tls: {enabled: true, cert: " + ca.cert_path() + "}}")
                  .find("both cert and key are required for mTLS"),
              std::string::npos);
    auto ok = parse("{name: n, target: 'x:1', tls: {enabled: true, ca_cert: " + ca.cert_path() + ", cert: " +
                    ca.cert_path() + ", key: " + ca.key_path() + "}}");
    ASSERT_TRUE(ok) << ok.message();
    EXPECT_TRUE((*ok)->settings().tls.enabled);
    EXPECT_FALSE((*ok)->settings().tls.ca_pem.empty());
    EXPECT_FALSE((*ok)->settings().tls.key_pem.empty());
    // TLS off: the files are not read (as the Go proxy).
    EXPECT_TRUE(parse("{name: n, target: 'x:1', tls: {enabled: false, ca_cert: " + empty + "}}"));
}

pipeline::exchange sample() {
    pipeline::exchange ex;
    ex.method = "POST";
    ex.host = "api.test:8443";
    ex.policy_host = "api.test";
    ex.raw_path = "/v1/a%20b";
    ex.path = "/v1/a b";
    ex.raw_query = "x=1";
    ex.remote_addr = "10.0.0.5:4242";
    ex.sni = "api.test";
    ex.request_headers.add("Host", "api.test:8443");
    ex.request_headers.add("Accept", "a");
    ex.request_headers.add("accept", "b");
    ex.request_headers.add("Content-Length", "4");
    ex.request_body = {true, true, false, false, "body"};
    return ex;
}

TEST(GrpcConvert, Request) {
    auto ex = sample();
    v1::HttpRequest out;
    fill_request(ex, true, out);
    EXPECT_EQ(out.method(), "POST");
    EXPECT_EQ(out.url(), "/v1/a%20b?x=1");
    EXPECT_EQ(out.host(), "api.test:8443");
    EXPECT_EQ(out.remote_addr(), "10.0.0.5:4242");
    EXPECT_EQ(out.body(), "body");
    EXPECT_EQ(out.headers().count("Host"), 0u);
    ASSERT_EQ(out.headers().count("Accept"), 1u);
    EXPECT_EQ(out.headers().at("Accept").values_size(), 2);
    v1::HttpRequest without;
    fill_request(ex, false, without);
    EXPECT_TRUE(without.body().empty());
    ex.request_body.complete = false;  // over the cap: never a prefix
    v1::HttpRequest partial;
    fill_request(ex, true, partial);
    EXPECT_TRUE(partial.body().empty());
}

TEST(GrpcConvert, ContextWithTunnel) {
    auto ex = sample();
    audit::tunnel_info tunnel{"api.test:443", {}};
    audit::trace tr;
    tr.name = "allowlist";
    tr.annotations["list"] = boost::json::array{"a", 1, true};
    tunnel.request_transforms.push_back(tr);
    tunnel.request_transforms.push_back(audit::trace{"plain", {}, 0, {}, {}});
    ex.tunnel = &tunnel;
    v1::TransformContext ctx;
    fill_context(ex, ctx);
    EXPECT_EQ(ctx.sni(), "api.test");
    EXPECT_EQ(ctx.tunnel().target(), "api.test:443");
    ASSERT_EQ(ctx.tunnel().request_transforms_size(), 2);
    const auto& list = ctx.tunnel().request_transforms(0).annotations().fields().at("list").list_value();
    ASSERT_EQ(list.values_size(), 3);
    EXPECT_EQ(list.values(0).string_value(), "a");
    EXPECT_EQ(list.values(1).number_value(), 1);
    EXPECT_FALSE(ctx.tunnel().request_transforms(1).has_annotations());
}

TEST(GrpcApply, ModifiedRequest) {
    auto ex = sample();
    v1::HttpRequest m;
    m.set_method("PUT");
    m.set_url("https://ignored.example/v2/n%41me?y=2#frag");
    m.set_host("api.test:8443");
    (*m.mutable_headers())["X-New"].add_values("v");
    (*m.mutable_headers())["Content-Length"].add_values("999");
    m.set_body("replaced");
    ASSERT_TRUE(apply_request_changes(ex, m));
    EXPECT_EQ(ex.method, "PUT");
    EXPECT_EQ(ex.raw_path, "/v2/n%41me");
    EXPECT_EQ(ex.path, "/v2/nAme");
    EXPECT_EQ(ex.raw_query, "y=2");
    EXPECT_EQ(ex.request_headers.get("X-New"), "v");
    EXPECT_EQ(ex.request_headers.get("Host"), "api.test:8443");      // the proxy's own
    EXPECT_EQ(ex.request_headers.get("Content-Length"), "4");        // framing stays the proxy's
    EXPECT_FALSE(ex.request_headers.contains("Accept"));             // the map replaced the rest
    EXPECT_EQ(ex.request_body.data, "replaced");
    EXPECT_TRUE(ex.request_body.modified);
}

TEST(GrpcApply, BadChangesAreRefusedWhole) {
    for (auto bad : {"relative/path", "/a/../b", "/a b", "/%zz", "/%00"}) {
        auto ex = sample();
        v1::HttpRequest m;
        m.set_method("DELETE");
        m.set_url(bad);
        EXPECT_FALSE(apply_request_changes(ex, m)) << bad;
        EXPECT_EQ(ex.method, "POST") << bad;  // nothing half-applied
    }
    auto ex = sample();
    v1::HttpRequest header;
    (*header.mutable_headers())["X-Bad"].add_values("a\r\nInjected: 1");
    EXPECT_FALSE(apply_request_changes(ex, header));
    v1::HttpRequest name;
    (*name.mutable_headers())["Bad Name"].add_values("x");
    EXPECT_FALSE(apply_request_changes(ex, name));
    v1::HttpRequest method;
    method.set_method("GET /x HTTP/1.1\r\n");
    EXPECT_FALSE(apply_request_changes(ex, method));
    ex.request_body.present = false;  // the service was not shown the body: it cannot replace it
    v1::HttpRequest body;
    body.set_body("x");
    EXPECT_FALSE(apply_request_changes(ex, body));
}

TEST(GrpcApply, ModifiedResponse) {
    pipeline::exchange ex;
    ex.status = 200;
    ex.response_headers.add("Content-Type", "text/plain");
    ex.response_headers.add("Transfer-Encoding", "chunked");
    ex.response_body = {true, true, false, false, "origin"};
    v1::HttpResponse m;
    m.set_status_code(201);
    (*m.mutable_headers())["X-Svc"].add_values("1");
    m.set_body("new");
    ASSERT_TRUE(apply_response_changes(ex, m));
    EXPECT_EQ(ex.status, 201);
    EXPECT_EQ(ex.response_headers.get("X-Svc"), "1");
    EXPECT_FALSE(ex.response_headers.contains("Content-Type"));
    EXPECT_EQ(ex.response_body.data, "new");
    EXPECT_TRUE(ex.response_body.modified);
    v1::HttpResponse interim;
    interim.set_status_code(101);
    EXPECT_FALSE(apply_response_changes(ex, interim));
}

TEST(GrpcApply, Reject) {
    auto absent = reject_with(nullptr, "why");
    EXPECT_EQ(absent.what, pipeline::verdict::kind::reject);
    EXPECT_EQ(absent.status, 403);
    EXPECT_EQ(absent.reason, "why");
    v1::HttpResponse zero;
    zero.set_body("b");
    EXPECT_EQ(reject_with(&zero, "").status, 403);
    v1::HttpResponse full;
    full.set_status_code(451);
    (*full.mutable_headers())["X-Why"].add_values("law");
    full.set_body("gone");
    auto v = reject_with(&full, "");
    EXPECT_EQ(v.status, 451);
    EXPECT_EQ(v.headers.get("X-Why"), "law");
    EXPECT_EQ(v.body, "gone");
}

}  // namespace
}  // namespace iron::transforms::grpcsvc
