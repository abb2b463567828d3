#include "transforms/gcp/gcp_id_token.hpp"

#include <algorithm>
#include <cctype>

#include "config/yaml_util.hpp"
#include "core/log.hpp"
#include "secrets/await.hpp"
#include "token_mint/stub.hpp"

namespace iron::transforms::gcp {
namespace {

using pipeline::verdict;

constexpr auto wait_bound = token_mint::call_timeout + std::chrono::seconds(5);

result<std::string> header_for(std::string raw) {
    while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.pop_back();
    while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.front()))) raw.erase(0, 1);
    std::transform(raw.begin(), raw.end(), raw.begin(), [](unsigned char c) { return std::tolower(c); });
    if (raw.empty() || raw == "authorization") return std::string("Authorization");
    if (raw == "x-serverless-authorization" || raw == "x_serverless_authorization") return std::string("X-Serverless-Authorization");
    return make_error("gcp_id_token: \"header\" must be \"authorization\" or \"x_serverless_authorization\"");
}

}  // namespace

gcp_id_token_transform::gcp_id_token_transform(gcp_id_token_settings s, std::vector<pipeline::host_rule> rules)
    : settings_(std::move(s)), rules_(std::move(rules)) {}

std::optional<verdict> gcp_id_token_transform::stub(pipeline::exchange& ex) const {
    const auto now = std::chrono::system_clock::now();
    if (auto audience = metadata_identity_audience(ex)) {
        ex.note("stubbed", "gcp_metadata_identity_endpoint");
        ex.note("audience", boost::json::string_view(*audience));
        return token_mint::made_response(verdict::stub(200), "text/plain", fake_id_token(*audience, now));
    }
    if (auto audience = id_token_request_audience(ex)) {
        ex.note("stubbed", "gcp_oauth2_id_token_endpoint");
        ex.note("audience", boost::json::string_view(*audience));
        return token_mint::made_response(verdict::stub(200), "application/json",
                                         R"({"id_token":")" + fake_id_token(*audience, now) +
                                             R"(","expires_in":3600,"token_type":"Bearer"})");
    }
    return std::nullopt;
}

bool gcp_id_token_transform::awaits_request(const pipeline::exchange& ex) const {
    return !ex.is_connect && !metadata_identity_audience(ex) && !id_token_request_audience(ex) && rules_.matches_any(ex);
}

verdict gcp_id_token_transform::settle(pipeline::exchange& ex, const token_mint::mint_outcome& got) const {
    if (got.ok()) {
        if (!got.principal.empty()) ex.note("service_account", boost::json::string_view(got.principal));
        ex.note("audience", boost::json::string_view(settings_.audience));
        token_mint::inject(ex, settings_.header, "Bearer ", *got.token);
        return verdict::next();
    }
    log::warn("gcp_id_token mint failed", {{"reason", got.reason}, {"error", got.detail}});
    ex.note("error", boost::json::string_view(got.reason));
    ex.note("rejected", "token_unavailable");
    return verdict::reject(403, "gcp_id_token could not mint a token (" + got.reason + ")");
}

verdict gcp_id_token_transform::on_request(pipeline::exchange& ex) const {
    if (auto s = stub(ex)) return std::move(*s);
    if (ex.is_connect || !rules_.matches_any(ex)) return verdict::next();
    return settle(ex, token_mint::mint_outcome::failure("mint_failed", "the token was not awaited"));
}

boost::asio::awaitable<verdict> gcp_id_token_transform::on_request_async(pipeline::exchange& ex) const {
    if (auto s = stub(ex)) co_return std::move(*s);
    if (ex.is_connect || !rules_.matches_any(ex)) co_return verdict::next();
    if (settings_.credentials.keyfile->pending()) {
        std::vector<const secrets::source*> pending{settings_.credentials.keyfile.get()};
        co_await secrets::await_fetched(pending, secrets::first_fetch_wait);
    }
    auto keyfile = settings_.credentials.keyfile_value();
    if (!keyfile) co_return settle(ex, token_mint::mint_outcome::failure("mint_failed", keyfile.message()));
    secrets::value_ptr key = *keyfile;
    auto fetch = [this, key]() -> boost::asio::awaitable<token_mint::mint_outcome> {
        co_return co_await fetch_id_token(clients_, key, settings_.audience);
    };
    token_mint::mint_outcome got = co_await cache_.get(google_credentials::fingerprint(key), fetch, wait_bound);
    co_return settle(ex, got);
}

void gcp_id_token_transform::refresh() const { settings_.credentials.keyfile->reload(); }

result<std::unique_ptr<gcp_id_token_transform>> gcp_id_token_transform::from_config(const YAML::Node& config,
                                                                                    const config::yaml_ctx& ctx) {
    if (!config::is_absent(config))
        if (auto r = config::expect_map(config, ctx, {"keyfile_path", "keyfile", "audience", "header", "rules"}); !r) return r.err();
    const YAML::Node cfg = config::is_absent(config) ? YAML::Node(YAML::NodeType::Map) : config;
    std::string path, header;
    gcp_id_token_settings s;
    for (auto [key, out] : {std::pair{"keyfile_path", &path}, std::pair{"audience", &s.audience}, std::pair{"header", &header}})
        if (auto r = config::read_optional_string(cfg, key, ctx, *out); !r) return r.err();
    const bool has_keyfile = !config::is_absent(cfg["keyfile"]);
    if (path.empty() == !has_keyfile) return ctx.fail(cfg, "gcp_id_token: requires exactly one of \"keyfile_path\" or \"keyfile\"");
    if (s.audience.empty()) return ctx.fail(cfg, "gcp_id_token: \"audience\" is required");
    auto rules = pipeline::parse_rules(cfg["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(cfg, "gcp_id_token: at least one entry in \"rules\" is required");
    auto h = header_for(header);
    if (!h) return ctx.child("header").fail(cfg["header"], h.message());
    s.header = *h;
    auto key = keyfile_source(cfg["keyfile"], ctx, path);
    if (!key) return key.err();
    s.credentials.keyfile = std::move(*key);
    return std::make_unique<gcp_id_token_transform>(std::move(s), std::move(*rules));
}

}  // namespace iron::transforms::gcp
