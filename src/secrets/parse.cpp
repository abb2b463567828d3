#include "secrets/parse.hpp"

#include "config/yaml_util.hpp"
#include "secrets/aws_stores.hpp"
#include "secrets/file_source.hpp"
#include "secrets/gcp_sm.hpp"
#include "secrets/onepassword_connect.hpp"
#include "secrets/remote_source.hpp"

namespace iron::secrets {
namespace {

result<std::string> opt_string(const YAML::Node& map, const char* key, const config::yaml_ctx& ctx) {
    const YAML::Node n = map[key];
    if (config::is_absent(n)) return std::string();
    return config::get_string(n, ctx.child(key));
}

result<std::string> required_string(const YAML::Node& map, const char* key, const config::yaml_ctx& ctx) {
    auto s = opt_string(map, key, ctx);
    if (!s) return s.err();
    if (s->empty()) {
        const YAML::Node n = map[key];
        return ctx.fail(config::is_absent(n) ? map : n, std::string("source.") + key + " is required");
    }
    return s;
}

result<file_source::duration> opt_duration(const YAML::Node& map, const char* key, const config::yaml_ctx& ctx) {
    const YAML::Node n = map[key];
    auto d = config::get_duration(n, ctx.child(key));
    if (!d) return d.err();
    if (d->count() < 0) {
        return ctx.child(key).fail(n, std::string(key) + " must not be negative; got " + config::format_go_duration(*d));
    }
    return *d;
}

result<bool> opt_bool(const YAML::Node& map, const char* key, const config::yaml_ctx& ctx, bool fallback) {
    const YAML::Node n = map[key];
    if (config::is_absent(n)) return fallback;
    return config::get_bool(n, ctx.child(key));
}

// ttl and failure_ttl, shared by every remote store.
struct cache_times {
    file_source::duration ttl{0}, failure_ttl{0};
};
result<cache_times> read_cache_times(const YAML::Node& node, const config::yaml_ctx& ctx) {
    auto ttl = opt_duration(node, "ttl", ctx);
    if (!ttl) return ttl.err();
    auto failure_ttl = opt_duration(node, "failure_ttl", ctx);
    if (!failure_ttl) return failure_ttl.err();
    return cache_times{*ttl, *failure_ttl};
}

// {type: aws_sm, secret_id, region?, ttl?, failure_ttl?, json_key?} and
// {type: aws_ssm, name, region?, with_decryption?, ttl?, failure_ttl?, json_key?}. (aws_ssm's
// `name` is the parameter: these two have no display-name extension.)
result<std::shared_ptr<source>> parse_aws(const YAML::Node& node, const config::yaml_ctx& ctx, const std::string& type,
                                          std::string json_key) {
    const bool sm = type == "aws_sm";
    const char* id_key = sm ? "secret_id" : "name";
    auto keys = sm ? config::expect_map(node, ctx, {"type", "secret_id", "region", "ttl", "failure_ttl", "json_key"})
                   : config::expect_map(node, ctx, {"type", "name", "region", "with_decryption", "ttl", "failure_ttl", "json_key"});
    if (!keys) return keys.err();
    auto id = required_string(node, id_key, ctx);
    if (!id) return id.err();
    auto region = opt_string(node, "region", ctx);
    if (!region) return region.err();
    auto times = read_cache_times(node, ctx);
    if (!times) return times.err();
    std::unique_ptr<store_fetcher> fetcher;
    if (sm) {
        fetcher = make_aws_sm_fetcher(*id, std::move(*region));
    } else {
        auto decrypt = opt_bool(node, "with_decryption", ctx, true);
        if (!decrypt) return decrypt.err();
        fetcher = make_aws_ssm_fetcher(*id, std::move(*region), *decrypt);
    }
    return std::shared_ptr<source>(std::make_shared<remote_source>(std::move(*id), std::move(json_key), times->ttl,
                                                                   times->failure_ttl, std::move(fetcher)));
}

// {type: 1password_connect, secret_ref, host_env?, token_env?, ttl?, failure_ttl?, json_key?}
result<std::shared_ptr<source>> parse_op_connect(const YAML::Node& node, const config::yaml_ctx& ctx, std::string json_key) {
    if (auto ok = config::expect_map(node, ctx, {"type", "secret_ref", "host_env", "token_env", "ttl", "failure_ttl", "json_key"}); !ok)
        return ok.err();
    auto secret_ref = required_string(node, "secret_ref", ctx);
    if (!secret_ref) return secret_ref.err();
    auto ref = parse_op_ref(*secret_ref);
    if (!ref) return ctx.child("secret_ref").fail(node["secret_ref"], "1password_connect: " + ref.message());
    auto host_env = opt_string(node, "host_env", ctx);
    if (!host_env) return host_env.err();
    auto token_env = opt_string(node, "token_env", ctx);
    if (!token_env) return token_env.err();
    auto times = read_cache_times(node, ctx);
    if (!times) return times.err();
    auto fetcher = make_op_connect_fetcher(*secret_ref, std::move(*ref), host_env->empty() ? "OP_CONNECT_HOST" : *host_env,
                                           token_env->empty() ? "OP_CONNECT_TOKEN" : *token_env);
    return std::shared_ptr<source>(std::make_shared<remote_source>(std::move(*secret_ref), std::move(json_key), times->ttl,
                                                                   times->failure_ttl, std::move(fetcher)));
}

// {type: gcp_sm, secret, credentials_file?, endpoint?, ttl?, failure_ttl?, json_key?}
result<std::shared_ptr<source>> parse_gcp_sm(const YAML::Node& node, const config::yaml_ctx& ctx, std::string json_key) {
    if (auto ok = config::expect_map(node, ctx, {"type", "secret", "credentials_file", "endpoint", "ttl", "failure_ttl", "json_key"}); !ok)
        return ok.err();
    auto secret = required_string(node, "secret", ctx);
    if (!secret) return secret.err();
    auto version = gcp_secret_version(*secret);
    if (!version) return ctx.child("secret").fail(node["secret"], "gcp_sm: " + version.message());
    auto credentials_file = opt_string(node, "credentials_file", ctx);
    if (!credentials_file) return credentials_file.err();
    auto endpoint = opt_string(node, "endpoint", ctx);
    if (!endpoint) return endpoint.err();
    if (endpoint->empty()) *endpoint = "https://secretmanager.googleapis.com";
    if (auto url = outbound::parse_base_url(*endpoint, "endpoint"); !url)
        return ctx.child("endpoint").fail(node["endpoint"], "gcp_sm: " + url.message());
    auto times = read_cache_times(node, ctx);
    if (!times) return times.err();
    auto fetcher = make_gcp_sm_fetcher(*version, std::move(*credentials_file), std::move(*endpoint));
    return std::shared_ptr<source>(std::make_shared<remote_source>(std::move(*version), std::move(json_key), times->ttl,
                                                                   times->failure_ttl, std::move(fetcher)));
}

}  // namespace

std::shared_ptr<source> make_env_source(std::string var) {
    auto s = std::make_shared<env_source>(std::move(var));
    s->refresh();
    return s;
}

result<std::shared_ptr<source>> parse_source(const YAML::Node& node, const config::yaml_ctx& ctx) {
    if (config::is_absent(node)) return ctx.fail(node, "source is required");
    if (!node.IsMap()) return ctx.fail(node, "expected a map like {type: env, var: NAME}");

    auto type = opt_string(node, "type", ctx);
    if (!type) return type.err();
    if (type->empty()) return ctx.fail(node, "source.type is required");

    auto common = [&](std::initializer_list<std::string_view> keys) { return config::expect_map(node, ctx, keys); };
    auto json_key = opt_string(node, "json_key", ctx);
    if (!json_key) return json_key.err();
    auto name = opt_string(node, "name", ctx);
    if (!name) return name.err();

    if (*type == "env") {
        if (auto ok = common({"type", "var", "json_key", "name"}); !ok) return ok.err();
        auto var = required_string(node, "var", ctx);
        if (!var) return var.err();
        auto s = std::make_shared<env_source>(std::move(*var), std::move(*name), std::move(*json_key));
        s->refresh();
        return std::shared_ptr<source>(std::move(s));
    }
    if (*type == "file") {
        if (auto ok = common({"type", "path", "ttl", "failure_ttl", "json_key", "name"}); !ok) return ok.err();
        auto path = required_string(node, "path", ctx);
        if (!path) return path.err();
        auto ttl = opt_duration(node, "ttl", ctx);
        if (!ttl) return ttl.err();
        auto failure_ttl = opt_duration(node, "failure_ttl", ctx);
        if (!failure_ttl) return failure_ttl.err();
        return std::shared_ptr<source>(std::make_shared<file_source>(std::move(*path), *ttl, *failure_ttl,
                                                                     std::move(*name), std::move(*json_key)));
    }
    if (*type == "control_plane") {
        if (auto ok = common({"type", "value", "json_key", "name"}); !ok) return ok.err();
        auto value = required_string(node, "value", ctx);
        if (!value) return value.err();
        auto s = std::make_shared<static_source>(std::move(*value), std::move(*name), std::move(*json_key));
        s->refresh();
        return std::shared_ptr<source>(std::move(s));
    }
    if (*type == "aws_sm" || *type == "aws_ssm") return parse_aws(node, ctx, *type, *json_key);
    if (*type == "1password_connect") return parse_op_connect(node, ctx, *json_key);
    if (*type == "gcp_sm") return parse_gcp_sm(node, ctx, *json_key);
    if (*type == "1password") {
        return ctx.child("type").fail(node["type"],
                                      "source type \"1password\" (a service account through 1Password's proprietary SDK) "
                                      "is not supported by this build: run a 1Password Connect server and use "
                                      "type: 1password_connect (OP_CONNECT_HOST, OP_CONNECT_TOKEN) with the same secret_ref");
    }
    return ctx.child("type").fail(node["type"], "unsupported source type " + config::go_quote(*type));
}

}  // namespace iron::secrets
