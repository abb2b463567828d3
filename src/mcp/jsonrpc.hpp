#pragma once
// JSON-RPC 2.0 as MCP's Streamable HTTP transport carries it: a POST body is one message or a
// batch (an array) of them; an answer is JSON or a stream of server-sent events each carrying one
// message (or a batch). Only what the policy needs: classify request messages, build the error
// answer, and cut denied tools out of tools/list results.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "mcp/policy.hpp"

namespace iron::mcp {

inline constexpr std::string_view tools_call = "tools/call";
inline constexpr std::string_view tools_list = "tools/list";

// One message of a request body, pointing into the parsed document.
struct message {
    std::string_view method;                   // "" for a response (no method)
    const boost::json::value* id = nullptr;    // null when absent
    const boost::json::value* params = nullptr;
};

// A request body, parsed. `malformed`: not JSON, not an object or a non-empty array of objects, or
// a member of the wrong type (method not a string, id not a string, number or null).
struct request_body {
    boost::json::value doc;
    bool batch = false;
    bool malformed = false;
    std::vector<message> messages;
};
request_body parse_request(std::string_view body);

// A tools/call's tool name and arguments; nullopt when params has no non-empty string `name`.
struct tool_call {
    std::string name;
    const boost::json::value* arguments = nullptr;  // null when absent
};
std::optional<tool_call> tool_call_of(const message& m);

// A stable key for an id (string or number; 1 and 1.0 are the same id), nullopt for a null or
// absent id, which no answer can be matched to.
std::optional<std::string> id_key(const boost::json::value* id);

// The denial: one error object per message of a batch (an array), else one object; ids as the
// client sent them (null when absent).
std::string error_answer(const request_body& req, std::int64_t code, const std::string& text);

// The audit record's view of a tools/call's arguments: their JSON when it fits in 64 bytes, else
// (or when not JSON) nullopt and `raw` the first bytes with "..." (cut on a UTF-8 boundary).
struct recorded_arguments {
    std::optional<boost::json::value> json;
    std::string raw;
};
recorded_arguments record_arguments(const boost::json::value* arguments);

// What filtering one answer message did, for the audit record.
struct answer_note {
    std::string method;        // the message's own method (a server request), or tools/list
    bool tools_list = false;   // the answer to one of the recorded tools/list requests
    std::size_t filtered = 0;  // tools removed
};

// Filters one parsed answer (a message or a batch) in place: in every response whose id is in
// `tools_list_ids`, the result's tools the server does not allow are removed. Appends one note per
// message. Returns the number of tools removed in all.
std::size_t filter_answer(boost::json::value& doc, const std::set<std::string>& tools_list_ids, const server& allowed,
                          std::vector<answer_note>& notes);

}  // namespace iron::mcp
