#pragma once
// One audit record per request, in the Go proxy's JSON shape. Field names live here as constants
// so the serializer, the tests and future sinks (OTLP) agree on them.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace iron::audit {

// Trace action words as they appear in JSON: "allow" (= continue), "reject", "stub", "error".
enum class trace_action { allow, reject, stub, error };
const char* to_string(trace_action a);

struct trace {
    std::string name;
    trace_action action = trace_action::allow;
    double duration_ms = 0;
    std::string error;              // omitted when empty
    boost::json::object annotations;  // omitted when empty; never holds a real secret value
};

struct tunnel_info {
    std::string target;  // "host:port"
    std::vector<trace> request_transforms;
};

// Overall action: "allow" | "reject" | "stub" | "error" | "client_cancel".
namespace action {
inline constexpr const char* allow = "allow";
inline constexpr const char* reject = "reject";
inline constexpr const char* stub = "stub";
inline constexpr const char* error = "error";
inline constexpr const char* client_cancel = "client_cancel";
}  // namespace action

struct record {
    std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    std::string host;
    std::string method;
    std::string path;  // decoded path, never the query
    std::string remote_addr;
    std::string sni;
    std::string mode = "mitm";
    std::string action = action::allow;
    int status_code = 0;
    double duration_ms = 0;

    std::optional<tunnel_info> tunnel;
    std::string rejected_by;  // omitted when empty
    std::string stubbed_by;   // omitted when empty
    std::string error;        // omitted when empty
    std::vector<trace> request_transforms;   // omitted when empty
    std::vector<trace> response_transforms;  // omitted when empty
    // body_capture transform output {request_body, request_body_truncated}; omitted when unset.
    std::optional<boost::json::object> body_capture;
    // The MCP policy's group {server, messages?, gateway?}; omitted unless the request matched an
    // MCP server.
    std::optional<boost::json::object> mcp;

    // Sets duration_ms from `started` to now.
    void finish();
};

// "INFO" for allow/stub/client_cancel, "WARN" for reject, "ERROR" for error.
const char* level_for(const record& r);

// One JSON line (no trailing newline), keys in the Go proxy's order:
// time, level, msg("request"), audit{host,method,path,remote_addr,sni,mode,action,status_code,
// duration_ms}, tunnel?, rejected_by?, stubbed_by?, error?, request_transforms?, response_transforms?,
// mcp?, body_capture?
std::string serialize(const record& r);
// The same, appended to `out`.
void serialize_to(std::string& out, const record& r);

// Append `v` as JSON the way Go's encoding/json writes it (what the Go proxy's audit lines look
// like): no HTML escaping, Go float formatting, and invalid UTF-8 replaced by U+FFFD so bytes from
// the network can never produce an invalid line. Usable by other JSON log writers.
void append_json(std::string& out, const boost::json::value& v);

}  // namespace iron::audit
