#pragma once
// What the MCP policy did to one exchange, for the audit record's `mcp` group:
//   {server, messages?: [{direction, method?, tool?, decision, reason?, arguments? | raw_arguments?,
//    filtered?}], response_not_filtered?, gateway?}
// One entry per JSON-RPC message the policy read, request side and answer side, in order. It also
// remembers the ids of the tools/list requests, which tell the answer filters what to rewrite.
// Shared by the policy stage and the response filters it attaches; all of them run on the
// exchange's worker thread.
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "pipeline/exchange.hpp"

namespace iron::mcp {

class mcp_record final : public pipeline::audit_group {
public:
    explicit mcp_record(std::string server) : server_(std::move(server)) {}

    const std::string& server() const { return server_; }

    // Bounded: a long event stream cannot grow the audit record without limit.
    static constexpr std::size_t max_messages = 256;

    void add(boost::json::object message);
    // Why an answer that should have been filtered went through untouched (too large, encoded).
    void note_not_filtered(std::string_view why) { not_filtered_ = std::string(why); }
    void set_gateway(boost::json::object gateway) { gateway_ = std::move(gateway); }

    std::set<std::string>& tools_list_ids() { return tools_list_ids_; }
    const std::set<std::string>& tools_list_ids() const { return tools_list_ids_; }

    void write(audit::record& rec) const override;

private:
    std::string server_;
    std::vector<boost::json::object> messages_;
    std::size_t dropped_ = 0;
    std::string not_filtered_;
    std::optional<boost::json::object> gateway_;
    std::set<std::string> tools_list_ids_;
};

// One message entry. `method`, `tool`, `reason` are left out when empty.
boost::json::object message_entry(std::string_view direction, std::string_view method, std::string_view tool,
                                  std::string_view decision, std::string_view reason = {});

}  // namespace iron::mcp
