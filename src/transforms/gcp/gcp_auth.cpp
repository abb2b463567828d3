#include "transforms/gcp/gcp_auth.hpp"

#include "config/yaml_util.hpp"
#include "core/log.hpp"
#include "secrets/await.hpp"
#include "token_mint/stub.hpp"

namespace iron::transforms::gcp {
namespace {

using pipeline::verdict;

constexpr auto wait_bound = token_mint::call_timeout + std::chrono::seconds(5);

}  // namespace

gcp_auth_transform::gcp_auth_transform(gcp_auth_settings s, std::vector<pipeline::host_rule> rules)
    : settings_(std::move(s)), rules_(std::move(rules)) {}

std::optional<verdict> gcp_auth_transform::stub(pipeline::exchange& ex) const {
    const bool token_request = is_google_token_endpoint(ex) && !id_token_request_audience(ex);
    if (token_request || is_metadata_token_path(ex)) return token_mint::access_token_stub(ex);
    return std::nullopt;
}

bool gcp_auth_transform::awaits_request(const pipeline::exchange& ex) const {
    const bool stubbed = (is_google_token_endpoint(ex) && !id_token_request_audience(ex)) || is_metadata_token_path(ex);
    return !stubbed && !ex.is_connect && applies(ex);
}

verdict gcp_auth_transform::settle(pipeline::exchange& ex, const token_mint::mint_outcome& got) const {
    if (got.ok()) {
        token_mint::inject(ex, "Authorization", "Bearer ", *got.token);
        if (!got.principal.empty()) ex.note("service_account", boost::json::string_view(got.principal));
        // inject() annotated `injected`; Go orders service_account first, which JSON readers ignore.
        return verdict::next();
    }
    log::warn("gcp_auth mint failed", {{"reason", got.reason}, {"error", got.detail}});
    ex.note("error", boost::json::string_view(got.detail));
    ex.note("rejected", "token_unavailable");
    return verdict::reject(403, "gcp_auth could not mint a token (" + got.reason + ")");
}

verdict gcp_auth_transform::on_request(pipeline::exchange& ex) const {
    if (auto s = stub(ex)) return std::move(*s);
    if (ex.is_connect || !applies(ex)) return verdict::next();
    return settle(ex, token_mint::mint_outcome::failure("mint_failed", "the token was not awaited"));
}

boost::asio::awaitable<verdict> gcp_auth_transform::on_request_async(pipeline::exchange& ex) const {
    if (auto s = stub(ex)) co_return std::move(*s);
    if (ex.is_connect || !applies(ex)) co_return verdict::next();
    if (settings_.credentials.keyfile && settings_.credentials.keyfile->pending()) {
        std::vector<const secrets::source*> pending{settings_.credentials.keyfile.get()};
        co_await secrets::await_fetched(pending, secrets::first_fetch_wait);
    }
    auto keyfile = settings_.credentials.keyfile_value();
    if (!keyfile) co_return settle(ex, token_mint::mint_outcome::failure("mint_failed", keyfile.message()));
    secrets::value_ptr key = *keyfile;
    auto fetch = [this, key]() -> boost::asio::awaitable<token_mint::mint_outcome> {
        co_return co_await fetch_access_token(clients_, key, settings_.scopes, settings_.subject);
    };
    token_mint::mint_outcome got = co_await cache_.get(google_credentials::fingerprint(key), fetch, wait_bound);
    co_return settle(ex, got);
}

void gcp_auth_transform::refresh() const {
    if (settings_.credentials.keyfile) settings_.credentials.keyfile->reload();
}

result<std::unique_ptr<gcp_auth_transform>> gcp_auth_transform::from_config(const YAML::Node& config, const config::yaml_ctx& ctx) {
    if (!config::is_absent(config))
        if (auto r = config::expect_map(config, ctx, {"keyfile_path", "keyfile", "credentials_provider", "subject", "scopes", "rules"}); !r)
            return r.err();
    const YAML::Node cfg = config::is_absent(config) ? YAML::Node(YAML::NodeType::Map) : config;
    std::string path;
    gcp_auth_settings s;
    if (auto r = config::read_optional_string(cfg, "keyfile_path", ctx, path); !r) return r.err();
    if (auto r = config::read_optional_string(cfg, "subject", ctx, s.subject); !r) return r.err();
    const bool has_keyfile = !config::is_absent(cfg["keyfile"]);
    const YAML::Node provider = cfg["credentials_provider"];
    const bool has_provider = !config::is_absent(provider);
    if (int(!path.empty()) + int(has_keyfile) + int(has_provider) != 1)
        return ctx.fail(cfg, "gcp_auth: requires exactly one of \"keyfile_path\", \"keyfile\", or \"credentials_provider\"");
    if (!config::is_absent(cfg["scopes"])) {
        auto scopes = config::get_string_list(cfg["scopes"], ctx.child("scopes"));
        if (!scopes) return scopes.err();
        s.scopes = std::move(*scopes);
    }
    if (s.scopes.empty()) return ctx.fail(cfg, "gcp_auth: at least one entry in \"scopes\" is required");
    if (has_provider && !s.subject.empty())
        return ctx.fail(cfg, "gcp_auth: \"subject\" cannot be combined with \"credentials_provider\" (only keyfile sources "
                             "support domain-wide delegation)");
    auto rules = pipeline::parse_rules(cfg["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (has_provider) {
        const auto pctx = ctx.child("credentials_provider");
        if (auto r = config::expect_map(provider, pctx, {"type"}); !r) return r.err();
        std::string type;
        if (auto r = config::read_optional_string(provider, "type", pctx, type); !r) return r.err();
        if (type != "workload_identity")
            return pctx.fail(provider, "gcp_auth: unsupported credentials_provider type " + config::go_quote(type) +
                                           " (want workload_identity)");
    } else {
        auto key = keyfile_source(cfg["keyfile"], ctx, path);
        if (!key) return key.err();
        s.credentials.keyfile = std::move(*key);
    }
    return std::make_unique<gcp_auth_transform>(std::move(s), std::move(*rules));
}

}  // namespace iron::transforms::gcp
