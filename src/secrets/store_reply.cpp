#include "secrets/store_reply.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>

namespace iron::secrets {
namespace {

namespace json = boost::json;

// Wipes every string in a parsed document (the reply held a secret somewhere in it).
void wipe(json::value& v) {
    if (v.is_string()) {
        auto& s = v.get_string();
        if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    } else if (v.is_object()) {
        for (auto& kv : v.get_object()) wipe(kv.value());
    } else if (v.is_array()) {
        for (auto& e : v.get_array()) wipe(e);
    }
}

std::string short_text(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 300)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
    return out;
}

}  // namespace

result<std::string> take_string(std::string_view body, const std::vector<std::string>& path) {
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec);
    if (ec) return make_error("reply is not JSON");
    std::string where;
    const json::value* at = &doc;
    for (const auto& key : path) {
        where += (where.empty() ? "" : ".") + key;
        const auto* obj = at->if_object();
        const json::value* next = obj ? obj->if_contains(key) : nullptr;
        if (next == nullptr) {
            wipe(doc);
            return make_error("reply has no " + where);
        }
        at = next;
    }
    if (!at->is_string()) {
        wipe(doc);
        return make_error("reply's " + where + " is not a string");
    }
    std::string out(at->get_string());
    wipe(doc);
    return out;
}

std::string aws_error_text(int status, std::string_view body) {
    std::string out = "status " + std::to_string(status);
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec);
    if (ec || !doc.is_object()) return out;
    const auto& obj = doc.get_object();
    auto field = [&](std::initializer_list<const char*> names) -> std::string {
        for (const char* n : names)
            if (const auto* v = obj.if_contains(n); v && v->is_string()) return short_text(v->get_string());
        return {};
    };
    std::string type = field({"__type", "code", "status"});
    if (auto hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
    std::string message = field({"message", "Message", "error"});
    if (const auto* e = obj.if_contains("error"); e && e->is_object()) {  // Google: {"error": {code, message, status}}
        const auto& eo = e->get_object();
        if (const auto* m = eo.if_contains("message"); m && m->is_string()) message = short_text(m->get_string());
        if (const auto* s = eo.if_contains("status"); s && s->is_string()) type = short_text(s->get_string());
    }
    if (!type.empty()) out += ": " + type;
    if (!message.empty()) out += ": " + message;
    return out;
}

}  // namespace iron::secrets
