#pragma once
// OTLP protobuf encoding of audit records, written by hand against the vendored schema
// (third_party/opentelemetry-proto, v1.11.0): LogRecord for one audit record, and the
// ExportLogsServiceRequest that carries a batch. Why not protoc-generated classes: the proxy would
// then link libprotobuf (a ~1 MiB shared library for six small messages) and build a message tree
// per record only to serialize it; this writes the bytes straight from the record. The unit tests
// parse what it writes with protoc-generated classes of the same .proto files, and the e2e tests
// with the official Python bindings, so the schema is what checks it, not this code.
//
// Field numbers used (logs.proto, common.proto, resource.proto, logs_service.proto):
//   ExportLogsServiceRequest.resource_logs = 1
//   ResourceLogs.resource = 1, .scope_logs = 2; Resource.attributes = 1
//   ScopeLogs.scope = 1, .log_records = 2; InstrumentationScope.name = 1, .version = 2
//   LogRecord.time_unix_nano = 1 (fixed64), .severity_number = 2, .severity_text = 3, .body = 5,
//     .attributes = 6, .observed_time_unix_nano = 11 (fixed64)
//   KeyValue.key = 1, .value = 2; AnyValue.string_value = 1, .bool_value = 2, .int_value = 3,
//     .double_value = 4, .array_value = 5, .kvlist_value = 6; ArrayValue.values = 1;
//   KeyValueList.values = 1
#include <chrono>
#include <string>
#include <vector>

#include "otel/settings.hpp"

namespace iron::audit {
struct record;
}

namespace iron::otel {

inline constexpr const char* scope_name = "iron-proxy/audit";

// SeverityNumber INFO (9), WARN (13), ERROR (17), as the JSON line's level says.
int severity_number_for(const char* level);

// One LogRecord message (its fields, without an outer tag): timestamp = the request's start,
// observed timestamp = `observed`, body "request", severity by action, the record's fields as flat
// attributes (see the README: OpenTelemetry export).
std::string encode_log_record(const audit::record& r, std::chrono::system_clock::time_point observed);

// Builds ExportLogsServiceRequest messages: one resource (service.name and the resource
// attributes), one scope (iron-proxy/audit), the given LogRecord messages.
class request_builder {
public:
    explicit request_builder(const key_values& resource);
    std::string build(const std::vector<std::string>& log_records) const;

private:
    std::string resource_field_;  // ResourceLogs.resource, tag included
    std::string scope_field_;     // ScopeLogs.scope, tag included
};

// ExportLogsServiceResponse.partial_success.rejected_log_records (0 when absent or unparsable).
long long rejected_in_response(const std::string& response);

}  // namespace iron::otel
