#include "mcp/record.hpp"

#include <boost/json/array.hpp>

namespace iron::mcp {

void mcp_record::add(boost::json::object message) {
    if (messages_.size() >= max_messages) {
        ++dropped_;
        return;
    }
    messages_.push_back(std::move(message));
}

void mcp_record::write(audit::record& rec) const {
    boost::json::object g;
    g["server"] = server_;
    if (!messages_.empty()) {
        boost::json::array arr;
        for (const auto& m : messages_) arr.push_back(m);
        g["messages"] = std::move(arr);
    }
    if (dropped_ > 0) g["messages_dropped"] = dropped_;
    if (!not_filtered_.empty()) g["response_not_filtered"] = not_filtered_;
    if (gateway_) g["gateway"] = *gateway_;
    rec.mcp = std::move(g);
}

boost::json::object message_entry(std::string_view direction, std::string_view method, std::string_view tool,
                                  std::string_view decision, std::string_view reason) {
    boost::json::object o;
    o["direction"] = direction;
    if (!method.empty()) o["method"] = method;
    if (!tool.empty()) o["tool"] = tool;
    o["decision"] = decision;
    if (!reason.empty()) o["reason"] = reason;
    return o;
}

}  // namespace iron::mcp
