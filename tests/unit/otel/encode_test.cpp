// The hand-written encoder against the official schema: what it writes is parsed by classes
// protoc generated from the vendored .proto files.
#include "otel/encode.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "audit/record.hpp"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace iron::otel {
namespace {

using namespace std::chrono;
namespace pb = opentelemetry::proto;

audit::record sample() {
    audit::record r;
    r.time = sys_days{year{2026} / June / 24} + 10h + nanoseconds(123456789);
    r.host = "api.openai.com";
    r.method = "POST";
    r.path = "/v1/chat/completions";
    r.remote_addr = "10.16.0.5:43210";
    r.sni = "api.openai.com";
    r.action = "reject";
    r.status_code = 403;
    r.duration_ms = 142.5;
    r.rejected_by = "allowlist";
    audit::trace t;
    t.name = "secrets";
    t.duration_ms = 0.08;
    t.annotations = boost::json::parse(
                        R"({"swapped":[{"secret":"OPENAI_API_KEY","locations":["header:Authorization"]}],"n":3,"ok":true,"none":null})")
                        .as_object();
    r.request_transforms.push_back(t);
    audit::trace deny;
    deny.name = "allowlist";
    deny.action = audit::trace_action::reject;
    deny.error = "host not allowed";
    r.response_transforms.push_back(deny);
    return r;
}

const pb::common::v1::AnyValue* attr(const pb::logs::v1::LogRecord& rec, const std::string& key) {
    for (const auto& kv : rec.attributes())
        if (kv.key() == key) return &kv.value();
    return nullptr;
}

const pb::common::v1::AnyValue* entry(const pb::common::v1::KeyValueList& list, const std::string& key) {
    for (const auto& kv : list.values())
        if (kv.key() == key) return &kv.value();
    return nullptr;
}

pb::logs::v1::LogRecord parse_record(const audit::record& r, system_clock::time_point observed) {
    pb::logs::v1::LogRecord rec;
    EXPECT_TRUE(rec.ParseFromString(encode_log_record(r, observed)));
    return rec;
}

TEST(OtelEncode, LogRecordMatchesTheSchema) {
    const auto observed = sys_days{year{2026} / June / 24} + 10h + 1s;
    pb::logs::v1::LogRecord rec = parse_record(sample(), observed);
    EXPECT_EQ(rec.time_unix_nano(), 1782295200123456789ull);
    EXPECT_EQ(rec.observed_time_unix_nano(), 1782295201000000000ull);
    EXPECT_EQ(rec.severity_number(), pb::logs::v1::SEVERITY_NUMBER_WARN);
    EXPECT_EQ(rec.severity_text(), "WARN");
    EXPECT_EQ(rec.body().string_value(), "request");
    EXPECT_EQ(attr(rec, "host")->string_value(), "api.openai.com");
    EXPECT_EQ(attr(rec, "method")->string_value(), "POST");
    EXPECT_EQ(attr(rec, "path")->string_value(), "/v1/chat/completions");
    EXPECT_EQ(attr(rec, "remote_addr")->string_value(), "10.16.0.5:43210");
    EXPECT_EQ(attr(rec, "sni")->string_value(), "api.openai.com");
    EXPECT_EQ(attr(rec, "mode")->string_value(), "mitm");
    EXPECT_EQ(attr(rec, "action")->string_value(), "reject");
    EXPECT_EQ(attr(rec, "status_code")->int_value(), 403);
    EXPECT_DOUBLE_EQ(attr(rec, "duration_ms")->double_value(), 142.5);
    EXPECT_EQ(attr(rec, "rejected_by")->string_value(), "allowlist");
    EXPECT_EQ(attr(rec, "error"), nullptr);
    EXPECT_EQ(attr(rec, "stubbed_by"), nullptr);
    EXPECT_EQ(attr(rec, "tunnel"), nullptr);

    const auto& traces = attr(rec, "request_transforms")->array_value();
    ASSERT_EQ(traces.values_size(), 1);
    const auto& t = traces.values(0).kvlist_value();
    EXPECT_EQ(entry(t, "name")->string_value(), "secrets");
    EXPECT_EQ(entry(t, "action")->string_value(), "allow");
    EXPECT_DOUBLE_EQ(entry(t, "duration_ms")->double_value(), 0.08);
    EXPECT_EQ(entry(t, "error"), nullptr);
    const auto& ann = entry(t, "annotations")->kvlist_value();
    const auto& swapped = entry(ann, "swapped")->array_value();
    ASSERT_EQ(swapped.values_size(), 1);
    const auto& one = swapped.values(0).kvlist_value();
    EXPECT_EQ(entry(one, "secret")->string_value(), "OPENAI_API_KEY");
    EXPECT_EQ(entry(one, "locations")->array_value().values(0).string_value(), "header:Authorization");
    EXPECT_DOUBLE_EQ(entry(ann, "n")->double_value(), 3.0);  // JSON numbers are doubles, as in Go
    EXPECT_TRUE(entry(ann, "ok")->bool_value());
    EXPECT_EQ(entry(ann, "none")->value_case(), pb::common::v1::AnyValue::VALUE_NOT_SET);

    const auto& resp = attr(rec, "response_transforms")->array_value().values(0).kvlist_value();
    EXPECT_EQ(entry(resp, "action")->string_value(), "reject");
    EXPECT_EQ(entry(resp, "error")->string_value(), "host not allowed");
}

TEST(OtelEncode, EmptyStringsStillSetTheValueAndSeverityFollowsTheAction) {
    audit::record r;
    r.action = "error";
    r.error = "dial tcp 10.0.0.1:443: connect: connection refused";
    r.status_code = 502;
    pb::logs::v1::LogRecord rec = parse_record(r, system_clock::now());
    EXPECT_EQ(attr(rec, "host")->value_case(), pb::common::v1::AnyValue::kStringValue);
    EXPECT_EQ(attr(rec, "host")->string_value(), "");
    EXPECT_EQ(rec.severity_number(), pb::logs::v1::SEVERITY_NUMBER_ERROR);
    EXPECT_EQ(rec.severity_text(), "ERROR");
    EXPECT_EQ(attr(rec, "error")->string_value(), r.error);
    r.action = "client_cancel";
    EXPECT_EQ(parse_record(r, system_clock::now()).severity_number(), pb::logs::v1::SEVERITY_NUMBER_INFO);
    r.action = "allow";
    r.body_capture = boost::json::object{{"request_body", "hi"}, {"request_body_truncated", false}};
    const pb::logs::v1::LogRecord captured = parse_record(r, system_clock::now());
    const auto* bc = attr(captured, "body_capture");
    ASSERT_NE(bc, nullptr);
    EXPECT_EQ(entry(bc->kvlist_value(), "request_body")->string_value(), "hi");
}

TEST(OtelEncode, LongValuesNeedMultiByteLengths) {
    audit::record r;
    r.path = std::string(70000, 'p');  // a 3-byte length inside nested messages
    pb::logs::v1::LogRecord rec = parse_record(r, system_clock::now());
    EXPECT_EQ(attr(rec, "path")->string_value(), r.path);
}

TEST(OtelEncode, ExportRequestCarriesResourceScopeAndRecords) {
    request_builder builder({{"service.name", "egress"}, {"deployment.environment", "prod"}});
    std::vector<std::string> records;
    for (int i = 0; i < 300; ++i) {
        audit::record r = sample();
        r.status_code = 200 + i;
        records.push_back(encode_log_record(r, system_clock::now()));
    }
    pb::collector::logs::v1::ExportLogsServiceRequest req;
    ASSERT_TRUE(req.ParseFromString(builder.build(records)));
    ASSERT_EQ(req.resource_logs_size(), 1);
    const auto& rl = req.resource_logs(0);
    ASSERT_EQ(rl.resource().attributes_size(), 2);
    EXPECT_EQ(rl.resource().attributes(0).key(), "service.name");
    EXPECT_EQ(rl.resource().attributes(0).value().string_value(), "egress");
    EXPECT_EQ(rl.resource().attributes(1).value().string_value(), "prod");
    ASSERT_EQ(rl.scope_logs_size(), 1);
    EXPECT_EQ(rl.scope_logs(0).scope().name(), "iron-proxy/audit");
    ASSERT_EQ(rl.scope_logs(0).log_records_size(), 300);
    EXPECT_EQ(attr(rl.scope_logs(0).log_records(299), "status_code")->int_value(), 499);
}

TEST(OtelEncode, PartialSuccessIsRead) {
    pb::collector::logs::v1::ExportLogsServiceResponse res;
    EXPECT_EQ(rejected_in_response(res.SerializeAsString()), 0);
    res.mutable_partial_success()->set_rejected_log_records(7);
    res.mutable_partial_success()->set_error_message("too old");
    EXPECT_EQ(rejected_in_response(res.SerializeAsString()), 7);
    EXPECT_EQ(rejected_in_response("\x0a\x05garbage"), 0);
}

}  // namespace
}  // namespace iron::otel
