#include "mcp/jsonrpc.hpp"

#include <cstdio>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace iron::mcp {
namespace {

std::string_view trim(std::string_view s) {
    const auto ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// One request message; false when it is not a JSON-RPC message this policy can read.
bool classify(const boost::json::value& v, message& out) {
    const auto* obj = v.if_object();
    if (obj == nullptr) return false;
    if (const auto* m = obj->if_contains("method")) {
        if (!m->is_string()) return false;
        out.method = m->get_string();
    }
    if (const auto* id = obj->if_contains("id")) {
        if (!id->is_string() && !id->is_number() && !id->is_null()) return false;
        out.id = id;
    }
    out.params = obj->if_contains("params");
    return true;
}

boost::json::object error_object(const boost::json::value* id, std::int64_t code, const std::string& text) {
    boost::json::object err;
    err["code"] = code;
    err["message"] = text;
    boost::json::object o;
    o["jsonrpc"] = "2.0";
    o["id"] = id != nullptr ? *id : boost::json::value(nullptr);
    o["error"] = std::move(err);
    return o;
}

// Removes the tools not allowed from a tools/list result; the number removed.
std::size_t filter_tools(boost::json::value& result, const server& allowed) {
    auto* obj = result.if_object();
    if (obj == nullptr) return 0;
    auto* tools = obj->if_contains("tools");
    if (tools == nullptr || !tools->is_array()) return 0;
    auto& arr = tools->get_array();
    boost::json::array kept;
    std::size_t removed = 0;
    for (auto& t : arr) {
        const auto* name = t.is_object() ? t.get_object().if_contains("name") : nullptr;
        // An entry without a string name names no tool a client could call: kept, as in Go.
        if (name == nullptr || !name->is_string() || allowed.allows(name->get_string())) {
            kept.push_back(std::move(t));
        } else {
            ++removed;
        }
    }
    if (removed > 0) arr = std::move(kept);
    return removed;
}

std::size_t filter_one(boost::json::value& msg, const std::set<std::string>& ids, const server& allowed,
                       std::vector<answer_note>& notes) {
    answer_note note;
    auto* obj = msg.if_object();
    if (obj != nullptr) {
        if (const auto* m = obj->if_contains("method"); m != nullptr && m->is_string()) note.method = m->get_string();
        auto key = id_key(obj->if_contains("id"));
        auto* result = obj->if_contains("result");
        note.tools_list = note.method.empty() && key && result != nullptr && ids.count(*key) != 0;
        if (note.tools_list) {
            note.filtered = filter_tools(*result, allowed);
            note.method = std::string(tools_list);
        }
    }
    notes.push_back(std::move(note));
    return notes.back().filtered;
}

}  // namespace

request_body parse_request(std::string_view body) {
    request_body out;
    const std::string_view t = trim(body);
    out.batch = !t.empty() && t.front() == '[';
    boost::system::error_code ec;
    out.doc = boost::json::parse(t, ec);
    if (ec || t.empty()) {
        out.malformed = true;
        return out;
    }
    if (const auto* arr = out.doc.if_array()) {
        if (arr->empty()) out.malformed = true;
        for (const auto& v : *arr) {
            message m;
            if (!classify(v, m)) out.malformed = true;
            out.messages.push_back(m);
        }
    } else {
        message m;
        if (!classify(out.doc, m)) out.malformed = true;
        out.messages.push_back(m);
    }
    return out;
}

std::optional<tool_call> tool_call_of(const message& m) {
    if (m.params == nullptr || !m.params->is_object()) return std::nullopt;
    const auto& p = m.params->get_object();
    const auto* name = p.if_contains("name");
    if (name == nullptr || !name->is_string() || name->get_string().empty()) return std::nullopt;
    return tool_call{std::string(name->get_string()), p.if_contains("arguments")};
}

std::optional<std::string> id_key(const boost::json::value* id) {
    if (id == nullptr || id->is_null()) return std::nullopt;
    if (id->is_string()) return "s:" + std::string(id->get_string());
    if (!id->is_number()) return std::nullopt;
    char buf[40];
    std::snprintf(buf, sizeof buf, "n:%.17g", id->to_number<double>());
    return std::string(buf);
}

std::string error_answer(const request_body& req, std::int64_t code, const std::string& text) {
    if (!req.batch) {
        const boost::json::value* id = req.malformed || req.messages.empty() ? nullptr : req.messages.front().id;
        return boost::json::serialize(error_object(id, code, text));
    }
    boost::json::array out;
    if (req.malformed || req.messages.empty()) {
        out.push_back(error_object(nullptr, code, text));
    } else {
        for (const auto& m : req.messages) out.push_back(error_object(m.id, code, text));
    }
    return boost::json::serialize(out);
}

recorded_arguments record_arguments(const boost::json::value* arguments) {
    constexpr std::size_t max_len = 64;
    recorded_arguments out;
    if (arguments == nullptr) return out;
    std::string text = boost::json::serialize(*arguments);
    if (text.size() <= max_len) {
        out.json = *arguments;
        return out;
    }
    std::size_t cut = max_len - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    out.raw = text.substr(0, cut) + "...";
    return out;
}

std::size_t filter_answer(boost::json::value& doc, const std::set<std::string>& ids, const server& allowed,
                          std::vector<answer_note>& notes) {
    if (auto* arr = doc.if_array()) {
        std::size_t removed = 0;
        for (auto& msg : *arr) removed += filter_one(msg, ids, allowed, notes);
        return removed;
    }
    return filter_one(doc, ids, allowed, notes);
}

}  // namespace iron::mcp
