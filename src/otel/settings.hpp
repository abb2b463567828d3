#pragma once
// OpenTelemetry log export settings, read only from the standard OTLP exporter environment
// variables (no YAML keys, as in the Go proxy). Export is off unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set. Every OTEL_EXPORTER_OTLP_X has a OTEL_EXPORTER_OTLP_LOGS_X
// twin that wins over it. Values never appear in errors when they may be credentials (headers).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace iron::otel {

enum class protocol { http_protobuf, grpc };

// Where exports go: scheme http or https, host, port and (http/protobuf) the request target.
struct endpoint {
    bool tls = false;
    std::string host;  // without brackets for IPv6 literals
    std::uint16_t port = 0;
    std::string target;  // http/protobuf: path + query as sent; grpc: the LogsService/Export path
    std::string text;    // for logs: scheme://host:port/target (no credentials: userinfo is refused)
    std::string authority() const;  // host[:port] as a Host header or :authority says it
};

using key_values = std::vector<std::pair<std::string, std::string>>;

struct settings {
    protocol proto = protocol::http_protobuf;
    endpoint where;
    key_values headers;   // sent with every export; may hold credentials, never logged
    key_values resource;  // service.name first, then OTEL_RESOURCE_ATTRIBUTES in order
    std::chrono::milliseconds timeout{10000};  // one export attempt
    bool gzip = false;
    std::string ca_file, client_cert_file, client_key_file;
    // Batch log record processor (OTEL_BLRP_*).
    std::size_t max_queue = 2048;
    std::chrono::milliseconds schedule_delay{1000};
    std::size_t max_batch = 512;
    std::chrono::milliseconds export_timeout{30000};  // one batch, retries included
};

// getenv, or a map in the tests.
using env_lookup = std::function<const char*(const char*)>;

// The settings, nullopt when export is off, or an error naming the variable (and its value when
// that cannot be a secret, e.g. an unknown protocol).
result<std::optional<settings>> settings_from_env(const env_lookup& env);
result<std::optional<settings>> settings_from_env();  // the process environment

// "k1=v1,k2=v2" with percent-decoding of keys and values, entries trimmed (the W3C baggage form
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES use). An entry without '=' is an error.
result<key_values> parse_key_values(const std::string& text);

}  // namespace iron::otel
