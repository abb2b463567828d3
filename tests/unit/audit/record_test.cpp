#include "audit/record.hpp"

#include <gtest/gtest.h>

#include <thread>

#include <boost/json/parse.hpp>

namespace iron::audit {
namespace {

using namespace std::chrono;

record base_record() {
    record r;
    r.time = sys_days{year{2026} / June / 24} + 10h + nanoseconds(123456789);
    r.host = "api.openai.com";
    r.method = "POST";
    r.path = "/v1/chat/completions";
    r.remote_addr = "10.16.0.5:43210";
    r.sni = "api.openai.com";
    r.status_code = 200;
    r.duration_ms = 142.5;
    return r;
}

trace make_trace(const char* name, trace_action a, double ms) {
    trace t;
    t.name = name;
    t.action = a;
    t.duration_ms = ms;
    return t;
}

TEST(AuditRecord, AllowedGolden) {
    record r = base_record();
    r.request_transforms.push_back(make_trace("allowlist", trace_action::allow, 0.02));
    trace s = make_trace("secrets", trace_action::allow, 0.08);
    boost::json::array swapped;
    swapped.push_back(boost::json::object{{"secret", "OPENAI_API_KEY"}, {"locations", boost::json::array{"header:Authorization"}}});
    s.annotations["swapped"] = std::move(swapped);
    r.request_transforms.push_back(std::move(s));
    EXPECT_EQ(serialize(r),
              R"({"time":"2026-06-24T10:00:00.123456789Z","level":"INFO","msg":"request",)"
              R"("audit":{"host":"api.openai.com","method":"POST","path":"/v1/chat/completions",)"
              R"("remote_addr":"10.16.0.5:43210","sni":"api.openai.com","mode":"mitm","action":"allow",)"
              R"("status_code":200,"duration_ms":142.5},)"
              R"("request_transforms":[{"name":"allowlist","action":"allow","duration_ms":0.02},)"
              R"({"name":"secrets","action":"allow","duration_ms":0.08,)"
              R"("annotations":{"swapped":[{"secret":"OPENAI_API_KEY","locations":["header:Authorization"]}]}}]})");
}

TEST(AuditRecord, RejectedGolden) {
    record r = base_record();
    r.action = action::reject;
    r.status_code = 403;
    r.duration_ms = 0.1;
    r.rejected_by = "allowlist";
    r.request_transforms.push_back(make_trace("allowlist", trace_action::reject, 0.005));
    EXPECT_EQ(level_for(r), std::string("WARN"));
    EXPECT_EQ(serialize(r),
              R"({"time":"2026-06-24T10:00:00.123456789Z","level":"WARN","msg":"request",)"
              R"("audit":{"host":"api.openai.com","method":"POST","path":"/v1/chat/completions",)"
              R"("remote_addr":"10.16.0.5:43210","sni":"api.openai.com","mode":"mitm","action":"reject",)"
              R"("status_code":403,"duration_ms":0.1},"rejected_by":"allowlist",)"
              R"("request_transforms":[{"name":"allowlist","action":"reject","duration_ms":0.005}]})");
}

TEST(AuditRecord, ErrorGolden) {
    record r = base_record();
    r.action = action::error;
    r.status_code = 502;
    r.duration_ms = 3;
    r.error = "transform secrets request: boom";
    trace t = make_trace("secrets", trace_action::error, 1.25);
    t.error = "boom";
    r.request_transforms.push_back(std::move(t));
    EXPECT_EQ(level_for(r), std::string("ERROR"));
    EXPECT_EQ(serialize(r),
              R"({"time":"2026-06-24T10:00:00.123456789Z","level":"ERROR","msg":"request",)"
              R"("audit":{"host":"api.openai.com","method":"POST","path":"/v1/chat/completions",)"
              R"("remote_addr":"10.16.0.5:43210","sni":"api.openai.com","mode":"mitm","action":"error",)"
              R"("status_code":502,"duration_ms":3},"error":"transform secrets request: boom",)"
              R"("request_transforms":[{"name":"secrets","action":"error","duration_ms":1.25,"error":"boom"}]})");
}

TEST(AuditRecord, TunnelStubAndResponseGroups) {
    record r = base_record();
    r.action = action::stub;
    r.stubbed_by = "oauth_token";
    tunnel_info ti;
    ti.target = "api.openai.com:443";
    ti.request_transforms.push_back(make_trace("allowlist", trace_action::allow, 0.001));
    r.tunnel = ti;
    r.request_transforms.push_back(make_trace("oauth_token", trace_action::stub, 0.5));
    r.response_transforms.push_back(make_trace("x", trace_action::allow, 0));
    EXPECT_EQ(level_for(r), std::string("INFO"));
    std::string s = serialize(r);
    EXPECT_NE(s.find(R"("tunnel":{"target":"api.openai.com:443","request_transforms":[{"name":"allowlist","action":"allow","duration_ms":0.001}]})"),
              std::string::npos)
        << s;
    EXPECT_NE(s.find(R"("stubbed_by":"oauth_token")"), std::string::npos);
    EXPECT_NE(s.find(R"("response_transforms":[{"name":"x","action":"allow","duration_ms":0}])"), std::string::npos) << s;

    // Key order: audit < tunnel < stubbed_by < request_transforms < response_transforms.
    auto pos = [&](const char* key) { return s.find(std::string("\"") + key + "\":"); };
    EXPECT_LT(pos("time"), pos("level"));
    EXPECT_LT(pos("level"), pos("msg"));
    EXPECT_LT(pos("msg"), pos("audit"));
    EXPECT_LT(pos("audit"), pos("tunnel"));
    EXPECT_LT(pos("tunnel"), pos("stubbed_by"));
    EXPECT_LT(pos("stubbed_by"), s.find("\"request_transforms\":[{\"name\":\"oauth_token\""));
    EXPECT_LT(s.find("\"request_transforms\":[{\"name\":\"oauth_token\""), pos("response_transforms"));

    // Tunnel without CONNECT traces omits request_transforms inside the group.
    r.tunnel->request_transforms.clear();
    EXPECT_NE(serialize(r).find(R"("tunnel":{"target":"api.openai.com:443"})"), std::string::npos);
}

TEST(AuditRecord, FullKeyOrder) {
    record r = base_record();
    r.action = action::error;
    r.tunnel = tunnel_info{"h:443", {}};
    r.rejected_by = "a";
    r.stubbed_by = "b";
    r.error = "c";
    r.request_transforms.push_back(make_trace("q", trace_action::allow, 1));
    r.response_transforms.push_back(make_trace("p", trace_action::allow, 1));
    std::string s = serialize(r);
    const char* order[] = {"\"time\"", "\"level\"", "\"msg\"", "\"audit\"", "\"host\"", "\"method\"", "\"path\"",
                           "\"remote_addr\"", "\"sni\"", "\"mode\"", "\"action\"", "\"status_code\"",
                           "\"duration_ms\"", "\"tunnel\"", "\"rejected_by\"", "\"stubbed_by\"", "\"error\"",
                           "\"request_transforms\"", "\"response_transforms\""};
    std::size_t last = 0;
    for (const char* k : order) {
        auto p = s.find(k, last);
        ASSERT_NE(p, std::string::npos) << k << " in " << s;
        last = p;
    }
}

TEST(AuditRecord, OptionalKeysOmitted) {
    record r = base_record();
    std::string s = serialize(r);
    for (const char* k : {"tunnel", "rejected_by", "stubbed_by", "\"error\"", "request_transforms", "response_transforms",
                          "annotations"}) {
        EXPECT_EQ(s.find(k), std::string::npos) << k;
    }
    // Empty strings in the audit group are still present.
    record e;
    e.time = base_record().time;
    std::string es = serialize(e);
    EXPECT_NE(es.find(R"("audit":{"host":"","method":"","path":"","remote_addr":"","sni":"","mode":"mitm","action":"allow","status_code":0,"duration_ms":0})"),
              std::string::npos)
        << es;
}

TEST(AuditRecord, ClientCancelIsInfo) {
    record r = base_record();
    r.action = action::client_cancel;
    EXPECT_EQ(level_for(r), std::string("INFO"));
    EXPECT_NE(serialize(r).find(R"("action":"client_cancel")"), std::string::npos);
}

TEST(AuditRecord, InvalidUtf8AndEscapes) {
    record r = base_record();
    r.path = std::string("/a\xff\xfe" "b\xc3\xa9\xe2\x82") + "\"\\\n\t\x01<&>";
    trace t = make_trace("t\xc0\xaf", trace_action::allow, 0);
    t.annotations[std::string("k\xff")] = std::string("v\xed\xa0\x80");  // surrogate => invalid
    r.request_transforms.push_back(std::move(t));
    std::string s = serialize(r);
    EXPECT_NE(s.find(R"("path":"/a\ufffd\ufffdbé\ufffd\ufffd\"\\\n\t\u0001<&>")"), std::string::npos) << s;
    EXPECT_NE(s.find(R"("name":"t\ufffd\ufffd")"), std::string::npos) << s;
    EXPECT_NE(s.find(R"("k\ufffd":"v\ufffd\ufffd\ufffd")"), std::string::npos) << s;
    boost::json::error_code ec;
    auto v = boost::json::parse(s, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(v.at("audit").at("path").as_string(), "/a\xEF\xBF\xBD\xEF\xBF\xBD" "b\xc3\xa9\xEF\xBF\xBD\xEF\xBF\xBD\"\\\n\t\x01<&>");
}

TEST(AuditRecord, NumberFormatting) {
    record r = base_record();
    auto dur = [&](double d) {
        r.duration_ms = d;
        std::string s = serialize(r);
        auto p = s.find("\"duration_ms\":") + 14;
        return s.substr(p, s.find('}', p) - p);
    };
    EXPECT_EQ(dur(0), "0");
    EXPECT_EQ(dur(1), "1");
    EXPECT_EQ(dur(0.001), "0.001");
    EXPECT_EQ(dur(123456.789), "123456.789");
    EXPECT_EQ(dur(1e-7), "1e-7");
    EXPECT_EQ(dur(1e21), "1e+21");
}

TEST(AuditRecord, FinishAndTimeFormat) {
    record r;
    std::this_thread::sleep_for(2ms);
    r.finish();
    EXPECT_GE(r.duration_ms, 2.0);
    EXPECT_LT(r.duration_ms, 5000.0);
    // RFC 3339, nanoseconds, UTC.
    std::string s = serialize(r);
    auto v = boost::json::parse(s);
    std::string t(v.at("time").as_string());
    ASSERT_EQ(t.size(), 30u) << t;
    EXPECT_EQ(t[10], 'T');
    EXPECT_EQ(t[19], '.');
    EXPECT_EQ(t.back(), 'Z');
}

TEST(AuditRecord, TraceActionWords) {
    EXPECT_STREQ(to_string(trace_action::allow), "allow");
    EXPECT_STREQ(to_string(trace_action::reject), "reject");
    EXPECT_STREQ(to_string(trace_action::stub), "stub");
    EXPECT_STREQ(to_string(trace_action::error), "error");
}

}  // namespace
}  // namespace iron::audit
