#pragma once
// The answer side of the MCP policy: response filters (pipeline/response_filter.hpp) that cut the
// tools a server does not allow out of tools/list results, so an agent is not offered tools it
// may not call. Attached only to answers to a request that carried a tools/list with an id; only
// the responses with those ids are rewritten (a tools/call result that happens to hold a `tools`
// array is left alone).
//   application/json   — the answer is held (at most max_held_bytes) and rewritten at its end;
//                        a larger one goes through untouched, and the record says so.
//   text/event-stream  — filtered event by event as each completes: the stream is never held
//                        whole, only the event being received (at most max_held_bytes; past that
//                        the rest of the stream goes through untouched, and the record says so).
//                        Once every tools/list id was answered the rest streams through as is.
#include <cstddef>
#include <memory>
#include <string_view>

#include "mcp/policy.hpp"
#include "mcp/record.hpp"
#include "pipeline/response_filter.hpp"

namespace iron::mcp {

inline constexpr std::size_t max_held_bytes = 8u << 20;

enum class answer_kind { json, event_stream, other };
// By the response's Content-Type (media type compared case-insensitively, parameters ignored).
answer_kind answer_kind_of(std::string_view content_type);

// `policy` keeps the server alive for as long as the filter may run.
std::unique_ptr<pipeline::response_filter> make_answer_filter(answer_kind kind, std::shared_ptr<const policy> policy,
                                                              const server& srv, std::shared_ptr<mcp_record> record);

}  // namespace iron::mcp
