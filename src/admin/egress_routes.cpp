#include "admin/egress_routes.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace iron::admin {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

response reply(const egress::answer& a) {
    return make_response(a.status, json::serialize(a.body) + "\n", "application/json");
}

response error(unsigned status, const std::string& message) {
    return reply(egress::answer{status, json::object{{"error", message}}});
}

response method_not_allowed(const char* allow) {
    response res = error(405, "method not allowed");
    res.set(bhttp::field::allow, allow);
    return res;
}

// The body as a JSON object whose members are all strings and all in `allowed`; else the reason.
std::optional<json::object> string_object(const request& req, std::initializer_list<std::string_view> allowed,
                                          std::string& why) {
    boost::system::error_code ec;
    json::value v = json::parse(req.body(), ec);
    if (ec || !v.is_object()) {
        why = "the body must be a JSON object";
        return std::nullopt;
    }
    for (const auto& [key, field] : v.as_object()) {
        if (std::find(allowed.begin(), allowed.end(), std::string_view(key)) == allowed.end()) {
            why = "unknown key \"" + std::string(key) + "\"";
            return std::nullopt;
        }
        if (!field.is_string()) {
            why = "\"" + std::string(key) + "\" must be a string";
            return std::nullopt;
        }
    }
    return std::move(v.as_object());
}

response add_rule(const request& req, egress::controller& egress) {
    std::string why;
    auto body = string_object(req, {"host", "cidr"}, why);
    if (body && body->size() != 1) why = "give exactly one of \"host\" and \"cidr\"";
    if (!body || body->size() != 1) return error(400, why);
    const auto& [key, value] = *body->begin();
    const auto kind = key == "host" ? egress::rule_kind::host : egress::rule_kind::cidr;
    return reply(egress.add_rule(kind, value.as_string()));
}

response set_mode(const request& req, egress::controller& egress) {
    std::string why;
    auto body = string_object(req, {"mode"}, why);
    const json::string* text = body && body->contains("mode") ? &body->at("mode").as_string() : nullptr;
    auto m = text ? egress::parse_mode(*text) : std::nullopt;
    if (!m) return error(400, body ? "\"mode\" must be \"warn\" or \"enforce\"" : why);
    return reply(egress.set_mode(*m));
}

}  // namespace

std::optional<response> egress_route(const request& req, std::string_view path, egress::controller& egress) {
    constexpr std::string_view rules_prefix = "/v1/egress/rules/";
    if (path == "/v1/egress") {
        if (req.method() != bhttp::verb::get) return method_not_allowed("GET");
        return reply(egress.describe());
    }
    if (path == "/v1/egress/rules") {
        if (req.method() != bhttp::verb::post) return method_not_allowed("POST");
        return add_rule(req, egress);
    }
    if (path.substr(0, rules_prefix.size()) == rules_prefix && path.size() > rules_prefix.size()) {
        if (req.method() != bhttp::verb::delete_) return method_not_allowed("DELETE");
        return reply(egress.remove_rule(path.substr(rules_prefix.size())));
    }
    if (path == "/v1/egress/mode") {
        if (req.method() != bhttp::verb::put) return method_not_allowed("PUT");
        return set_mode(req, egress);
    }
    return std::nullopt;
}

}  // namespace iron::admin
