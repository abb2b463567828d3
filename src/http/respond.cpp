#include "http/respond.hpp"

#include "core/headers.hpp"

namespace iron::http {

namespace bhttp = boost::beast::http;

bhttp::response<bhttp::string_body> make_error_text(unsigned status, const std::string& message, bool keep_alive) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = message + "\n";
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

bhttp::response<bhttp::string_body> make_verdict_response(const pipeline::verdict& v, bool keep_alive) {
    if (v.what == pipeline::verdict::kind::error) return make_error_text(502, "bad gateway", keep_alive);
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(v.status), 11};
    bool has_type = false;
    for (const auto& h : v.headers.entries()) {
        if (core::iequals(h.name, "Content-Length") || core::iequals(h.name, "Transfer-Encoding") ||
            core::iequals(h.name, "Connection"))
            continue;
        if (core::iequals(h.name, "Content-Type")) has_type = true;
        res.insert(h.name, h.value);
    }
    if (!has_type) res.set(bhttp::field::content_type, "text/plain");
    res.body() = v.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace iron::http
