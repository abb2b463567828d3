// aws_auth_transform::from_config: the `aws_auth` config block, parsed strictly (unknown keys are
// errors). Credentials are exactly one of: access_key_id + secret_access_key (secret sources), or
// credentials_provider {type: workload_identity, region?}.
#include "config/yaml_util.hpp"
#include "secrets/parse.hpp"
#include "transforms/aws_auth/aws_auth.hpp"

namespace iron::transforms::aws_auth {
namespace {

using config::go_quote;

result<void> read_provider(const YAML::Node& node, const config::yaml_ctx& ctx, aws_auth_settings& s) {
    if (auto r = config::expect_map(node, ctx, {"type", "region"}); !r) return r;
    std::string type;
    if (auto r = config::read_optional_string(node, "type", ctx, type); !r) return r;
    if (type != "workload_identity")
        return ctx.fail(node, "aws_auth: unknown credentials_provider type " + go_quote(type) + " (want workload_identity)");
    if (auto r = config::read_optional_string(node, "region", ctx, s.provider_region); !r) return r;
    s.workload_identity = true;
    return ok();
}

result<void> read_credentials(const YAML::Node& config, const config::yaml_ctx& ctx, aws_auth_settings& s) {
    const YAML::Node id = config["access_key_id"], secret = config["secret_access_key"], provider = config["credentials_provider"];
    const bool has_keys = !config::is_absent(id) || !config::is_absent(secret);
    if (has_keys == !config::is_absent(provider))
        return ctx.fail(config, "aws_auth: exactly one of access_key_id/secret_access_key or credentials_provider is required");
    if (!has_keys) return read_provider(provider, ctx.child("credentials_provider"), s);
    if (config::is_absent(id) || config::is_absent(secret))
        return ctx.fail(config, "aws_auth: access_key_id and secret_access_key must both be set");
    auto id_src = secrets::parse_source(id, ctx.child("access_key_id"));
    if (!id_src) return id_src.err();
    auto secret_src = secrets::parse_source(secret, ctx.child("secret_access_key"));
    if (!secret_src) return secret_src.err();
    s.access_key_id = std::move(*id_src);
    s.secret_access_key = std::move(*secret_src);
    return ok();
}

result<void> read_list(const YAML::Node& config, std::string_view key, const config::yaml_ctx& ctx, std::vector<std::string>& out) {
    const YAML::Node n = config[std::string(key)];
    if (config::is_absent(n)) return ok();
    auto list = config::get_string_list(n, ctx.child(key));
    if (!list) return list.err();
    out = std::move(*list);
    return ok();
}

}  // namespace

result<std::unique_ptr<aws_auth_transform>> aws_auth_transform::from_config(const YAML::Node& config, const config::yaml_ctx& ctx) {
    if (config::is_absent(config))
        return ctx.fail(config, "aws_auth: exactly one of access_key_id/secret_access_key or credentials_provider is required");
    if (auto r = config::expect_map(config, ctx, {"access_key_id", "secret_access_key", "credentials_provider", "rules",
                                                  "allowed_regions", "allowed_services", "unsigned_payload", "allow_chunked_body"});
        !r)
        return r.err();
    aws_auth_settings s;
    if (auto r = read_credentials(config, ctx, s); !r) return r.err();
    if (auto r = read_list(config, "allowed_regions", ctx, s.allowed_regions); !r) return r.err();
    if (auto r = read_list(config, "allowed_services", ctx, s.allowed_services); !r) return r.err();
    if (auto r = config::read_optional_bool(config, "unsigned_payload", ctx, s.unsigned_payload); !r) return r.err();
    if (auto r = config::read_optional_bool(config, "allow_chunked_body", ctx, s.allow_chunked_body); !r) return r.err();
    auto rules = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(config, "aws_auth: at least one entry in \"rules\" is required");
    return std::make_unique<aws_auth_transform>(std::move(s), std::move(*rules));
}

}  // namespace iron::transforms::aws_auth
