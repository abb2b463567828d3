// oauth_token_transform::from_config: the `oauth_token` block, parsed strictly (unknown keys are
// errors) and checked in the Go proxy's order with its messages.
#include <algorithm>
#include <cctype>

#include "config/yaml_util.hpp"
#include "core/percent.hpp"
#include "secrets/parse.hpp"
#include "transforms/oauth_token/oauth_token.hpp"

namespace iron::transforms::oauth_token {
namespace {

using config::go_quote;

constexpr std::string_view credential_fields[] = {"refresh_token", "client_id", "client_secret", "username", "password",
                                                  "issuer",        "subject",   "private_key",   "private_key_id"};

// Which credential fields a grant requires and which it may take.
struct grant_shape {
    std::string_view grant;
    std::vector<std::string_view> required;
    std::vector<std::string_view> optional;
};

const std::vector<grant_shape>& grant_shapes() {
    static const std::vector<grant_shape> shapes = {
        {"refresh_token", {"refresh_token", "client_id"}, {"client_secret"}},
        {"client_credentials", {"client_id", "client_secret"}, {}},
        {"password", {"username", "password", "client_id"}, {"client_secret"}},
        {"jwt_bearer", {"issuer", "subject", "private_key"}, {"private_key_id"}},
    };
    return shapes;
}

// Go's wording for a missing field of a grant.
std::string missing_message(std::string_view grant, std::string_view field) {
    const std::string g(grant);
    if (grant == "client_credentials") return g + " grant requires \"client_id\" and \"client_secret\"";
    if (grant == "password" && (field == "username" || field == "password"))
        return g + " grant requires \"username\" and \"password\"";
    return g + " grant requires \"" + std::string(field) + "\"";
}

// The endpoint's host (lower-cased, without port) and path, as requests for it are matched.
result<void> parse_endpoint(const std::string& url, token_entry& e) {
    const auto scheme_end = url.find("://");
    std::string scheme = scheme_end == std::string::npos ? std::string() : url.substr(0, scheme_end);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
    if (scheme != "http" && scheme != "https") return make_error("invalid token_endpoint: " + go_quote(url) + " is not an http(s) URL");
    const auto path_at = url.find_first_of("/?#", scheme_end + 3);
    std::string authority = url.substr(scheme_end + 3, path_at == std::string::npos ? std::string::npos : path_at - scheme_end - 3);
    if (const auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
    std::string host = authority;
    if (!host.empty() && host[0] == '[') host = host.substr(1, host.find(']') - 1);
    else if (const auto colon = host.rfind(':'); colon != std::string::npos) host.erase(colon);
    if (host.empty()) return make_error("invalid token_endpoint: " + go_quote(url) + " has no host");
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!host.empty() && host.back() == '.') host.pop_back();
    std::string path = path_at == std::string::npos ? std::string() : url.substr(path_at);
    path = path.substr(0, path.find_first_of("?#"));
    e.stub_host = host;
    e.stub_path = path.empty() ? "/" : core::percent_decode(path);
    e.token_endpoint = url;
    return ok();
}

result<void> read_sources(const YAML::Node& entry, const config::yaml_ctx& ctx, token_entry& e) {
    const grant_shape* shape = nullptr;
    for (const auto& g : grant_shapes())
        if (g.grant == e.grant) shape = &g;
    for (std::string_view field : shape->required)
        if (config::is_absent(entry[std::string(field)])) return ctx.fail(entry, missing_message(e.grant, field));
    for (std::string_view field : credential_fields) {
        const YAML::Node n = entry[std::string(field)];
        if (config::is_absent(n)) continue;
        const bool wanted = std::find(shape->required.begin(), shape->required.end(), field) != shape->required.end() ||
                            std::find(shape->optional.begin(), shape->optional.end(), field) != shape->optional.end();
        // Go ignores a field its grant does not use; a stray credential is more likely a mistake.
        if (!wanted)
            return ctx.child(field).fail(n, std::string(field) + " is not used by the " + e.grant + " grant");
        auto src = secrets::parse_source(n, ctx.child(field));
        if (!src) return make_error(src.message());
        e.credentials.emplace_back(std::string(field), std::move(*src));
    }
    std::sort(e.credentials.begin(), e.credentials.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    const YAML::Node headers = entry["token_endpoint_headers"];
    if (config::is_absent(headers)) return ok();
    const auto hctx = ctx.child("token_endpoint_headers");
    if (!headers.IsMap()) return hctx.fail(headers, "expected a map of header name → secret source");
    for (const auto& kv : headers) {
        const std::string name = kv.first.Scalar();
        if (name.empty()) return hctx.fail(headers, "token_endpoint_headers: header name must not be empty");
        auto src = secrets::parse_source(kv.second, hctx.child(name));
        if (!src) return make_error(src.message());
        e.endpoint_headers.emplace_back(name, std::move(*src));
    }
    std::sort(e.endpoint_headers.begin(), e.endpoint_headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return ok();
}

result<std::unique_ptr<token_entry>> read_entry(const YAML::Node& entry, const config::yaml_ctx& ctx) {
    if (auto r = config::expect_map(entry, ctx, {"grant", "refresh_token", "client_id", "client_secret", "username", "password",
                                                 "issuer", "subject", "private_key", "private_key_id", "audience",
                                                 "token_endpoint", "scopes", "rules", "header", "value_prefix", "require",
                                                 "token_endpoint_headers"});
        !r)
        return r.err();
    auto e = std::make_unique<token_entry>();
    std::string endpoint;
    for (auto [key, out] : {std::pair{"grant", &e->grant}, std::pair{"audience", &e->audience},
                            std::pair{"token_endpoint", &endpoint}, std::pair{"header", &e->header},
                            std::pair{"value_prefix", &e->value_prefix}})
        if (auto r = config::read_optional_string(entry, key, ctx, *out); !r) return r.err();
    if (auto r = config::read_optional_bool(entry, "require", ctx, e->require); !r) return r.err();
    const bool known = std::any_of(grant_shapes().begin(), grant_shapes().end(), [&](const auto& g) { return g.grant == e->grant; });
    if (!known)
        return ctx.fail(entry, "\"grant\" must be one of refresh_token, client_credentials, password, jwt_bearer (got " +
                                   go_quote(e->grant) + ")");
    if (endpoint.empty()) return ctx.fail(entry, e->grant + " grant requires \"token_endpoint\"");
    if (e->grant == "jwt_bearer" && e->audience.empty()) return ctx.fail(entry, "jwt_bearer grant requires \"audience\"");
    if (e->header.empty()) e->header = "Authorization";
    if (e->value_prefix.empty()) e->value_prefix = "Bearer ";
    if (auto r = read_sources(entry, ctx, *e); !r) return r.err();
    if (const YAML::Node n = entry["scopes"]; !config::is_absent(n)) {
        auto scopes = config::get_string_list(n, ctx.child("scopes"));
        if (!scopes) return scopes.err();
        e->scopes = std::move(*scopes);
    }
    auto rules = pipeline::parse_rules(entry["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(entry, "at least one entry in \"rules\" is required");
    e->rules = pipeline::rule_set(std::move(*rules));
    if (auto r = parse_endpoint(endpoint, *e); !r) return ctx.child("token_endpoint").fail(entry["token_endpoint"], r.message());
    return e;
}

}  // namespace

result<std::unique_ptr<oauth_token_transform>> oauth_token_transform::from_config(const YAML::Node& config,
                                                                                  const config::yaml_ctx& ctx) {
    if (!config::is_absent(config))
        if (auto r = config::expect_map(config, ctx, {"tokens"}); !r) return r.err();
    const YAML::Node tokens = config::is_absent(config) ? YAML::Node() : config["tokens"];
    if (config::is_absent(tokens) || (tokens.IsSequence() && tokens.size() == 0))
        return ctx.fail(config, "oauth_token: at least one entry in \"tokens\" is required");
    if (!tokens.IsSequence()) return ctx.child("tokens").fail(tokens, "expected a list of token entries");
    std::vector<std::unique_ptr<token_entry>> entries;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        auto e = read_entry(tokens[i], ctx.child("tokens").index(i));
        if (!e) return e.err();
        entries.push_back(std::move(*e));
    }
    return std::make_unique<oauth_token_transform>(std::move(entries));
}

}  // namespace iron::transforms::oauth_token
