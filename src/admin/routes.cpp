#include "admin/routes.hpp"

#include <exception>

#include <openssl/crypto.h>
#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>

#include "admin/egress_routes.hpp"
#include "core/log.hpp"
#include "metrics/exposition.hpp"
#include "metrics/metrics.hpp"

namespace iron::admin {

namespace bhttp = boost::beast::http;

namespace {

// The path of a request target, without its query.
std::string_view path_of(const request& req) {
    std::string_view t(req.target().data(), req.target().size());
    return t.substr(0, t.find('?'));
}

response text(unsigned status, std::string body) {
    return make_response(status, std::move(body), "text/plain; charset=utf-8");
}

// Management responses: one JSON object and a newline, as Go's json.Encoder writes them.
response json(unsigned status, const char* key, std::string_view value) {
    boost::json::object o;
    o[key] = value;
    return make_response(status, boost::json::serialize(o) + "\n", "application/json");
}

response method_not_allowed(const char* allow) {
    response res = json(405, "error", "method not allowed");
    res.set(bhttp::field::allow, allow);
    return res;
}

response reload(const request& req, const reload_fn& apply) {
    if (req.method() != bhttp::verb::post) return method_not_allowed("POST");
    result<void> applied = ok();
    try {
        applied = apply();
    } catch (const std::exception& e) {  // not a validation failure: Go's 500 (nothing was swapped)
        metrics::config_reload(false);
        log::error("config reload failed", {{"error", e.what()}});
        return json(500, "error", "internal error");
    }
    metrics::config_reload(static_cast<bool>(applied));
    if (!applied) {
        log::error("config reload failed", {{"error", applied.message()}});
        return json(422, "error", applied.message());
    }
    return json(200, "status", "ok");
}

}  // namespace

handler metrics_routes() {
    return [](const request& req) -> response {
        const auto path = path_of(req);
        if (path == "/healthz") return text(200, "OK");
        if (path == "/readyz") return metrics::ready() ? text(200, "ready") : text(503, "not ready");
        if (path == "/metrics") return make_response(200, metrics::render(), metrics::exposition_content_type);
        return not_found();
    };
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
    constexpr std::string_view scheme = "Bearer ";
    if (authorization.substr(0, scheme.size()) != scheme) return false;
    const std::string_view given = authorization.substr(scheme.size());
    // Like Go's subtle.ConstantTimeCompare: the length may show, the content never does.
    if (given.size() != token.size() || token.empty()) return false;
    return CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

handler management_routes(std::string token, reload_fn apply, std::shared_ptr<egress::controller> egress) {
    return [token = std::move(token), apply = std::move(apply), egress = std::move(egress)](const request& req) -> response {
        auto auth = req[bhttp::field::authorization];
        if (!bearer_matches(std::string_view(auth.data(), auth.size()), token))
            return json(401, "error", "unauthorized");
        const auto path = path_of(req);
        if (path == "/v1/reload") return reload(req, apply);
        if (egress)
            if (auto answered = egress_route(req, path, *egress)) return std::move(*answered);
        if (path == "/v1/status") {
            if (req.method() != bhttp::verb::get) return method_not_allowed("GET");
            return json(404, "error", "status is unavailable in standalone mode");
        }
        if (path == "/v1/sync") {
            if (req.method() != bhttp::verb::post) return method_not_allowed("POST");
            return json(404, "error", "sync is unavailable in standalone mode");
        }
        return not_found();
    };
}

}  // namespace iron::admin
