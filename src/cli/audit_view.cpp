#include "cli/audit_view.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/cidr.hpp"
#include "core/host_glob.hpp"

namespace iron::cli {
namespace json = boost::json;

namespace {

std::string string_at(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || !v->is_string()) return {};
    return std::string(v->get_string());
}

double number_at(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return 0;
    if (v->is_double()) return v->get_double();
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    return 0;
}

// Did a transform of this list annotate {"action":"warn"} (the allowlist in warn mode)?
bool has_warn_annotation(const json::value* transforms) {
    if (transforms == nullptr || !transforms->is_array()) return false;
    for (const auto& t : transforms->get_array()) {
        if (!t.is_object()) continue;
        const json::value* ann = t.get_object().if_contains("annotations");
        if (ann != nullptr && ann->is_object() && string_at(ann->get_object(), "action") == "warn") return true;
    }
    return false;
}

audit_view view_of(const json::object& line, const json::object& audit) {
    audit_view v;
    v.time = string_at(line, "time");
    v.action = string_at(audit, "action");
    v.status = static_cast<int>(number_at(audit, "status_code"));
    v.method = string_at(audit, "method");
    v.host = string_at(audit, "host");
    v.path = string_at(audit, "path");
    v.mode = string_at(audit, "mode");
    v.sni = string_at(audit, "sni");
    v.duration_ms = number_at(audit, "duration_ms");
    v.rejected_by = string_at(line, "rejected_by");
    v.error = string_at(line, "error");
    if (const json::value* t = line.if_contains("tunnel"); t != nullptr && t->is_object())
        v.tunnel_target = string_at(t->get_object(), "target");
    v.warned = has_warn_annotation(line.if_contains("request_transforms"));
    return v;
}

}  // namespace

std::string audit_view::shown_action() const { return action == "allow" && warned ? "warn" : action; }

std::string audit_view::policy_host() const {
    std::string_view h = host;
    if (h.empty()) h = sni;  // an sni-only connection that failed before naming a host
    return core::normalize_host(core::strip_port(h));
}

parsed_line parse_audit_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return {};
    const json::object& o = v.get_object();
    const json::value* audit = o.if_contains("audit");
    if (audit == nullptr || !audit->is_object()) {
        const bool log_line = o.contains("msg") || o.contains("level");
        return {log_line ? line_kind::other_log : line_kind::malformed, std::nullopt};
    }
    return {line_kind::record, view_of(o, audit->get_object())};
}

bool is_ip_literal(std::string_view host) { return core::ip_address::parse(host).has_value(); }

}  // namespace iron::cli
