// judge_transform::from_config: the `judge` config block, parsed strictly, with the Go proxy's
// messages for what it checks ("judge transform \"x\": prompt is required", …).
#include <cstdlib>

#include "config/yaml_util.hpp"
#include "transforms/judge/judge.hpp"

namespace iron::transforms::judge {
namespace {

// A positive integer, else the default (as Go: zero and negatives mean "use the default").
result<void> read_count(const YAML::Node& m, std::string_view key, const config::yaml_ctx& ctx, std::int64_t& out) {
    const YAML::Node n = m[std::string(key)];
    if (config::is_absent(n)) return ok();
    auto v = config::get_int(n, ctx.child(key));
    if (!v) return v.err();
    if (*v > 0) out = *v;
    return ok();
}

result<void> read_duration(const YAML::Node& m, std::string_view key, const config::yaml_ctx& ctx,
                           std::chrono::nanoseconds& out) {
    const YAML::Node n = m[std::string(key)];
    if (config::is_absent(n)) return ok();
    auto v = config::get_duration(n, ctx.child(key));
    if (!v) return v.err();
    if (v->count() > 0) out = *v;
    return ok();
}

result<void> read_breaker(const YAML::Node& config, const config::yaml_ctx& ctx, judge_settings& s) {
    const YAML::Node cb = config["circuit_breaker"];
    if (config::is_absent(cb)) return ok();
    const auto cctx = ctx.child("circuit_breaker");
    if (auto r = config::expect_map(cb, cctx, {"consecutive_failures", "cooldown"}); !r) return r;
    if (auto r = read_count(cb, "consecutive_failures", cctx, s.breaker_failures); !r) return r;
    return read_duration(cb, "cooldown", cctx, s.breaker_cooldown);
}

// provider: {type, model, api_key_env, base_url, max_tokens}; the key variable must be set now.
result<void> read_provider(const YAML::Node& config, const config::yaml_ctx& ctx, judge_settings& s) {
    const std::string who = "judge transform " + config::go_quote(s.name) + ": ";
    const YAML::Node p = config["provider"];
    if (config::is_absent(p)) return ctx.fail(config, who + "provider.type is required");
    const auto pctx = ctx.child("provider");
    if (auto r = config::expect_map(p, pctx, {"type", "model", "api_key_env", "base_url", "max_tokens"}); !r) return r;
    std::string type, base;
    if (auto r = config::read_optional_string(p, "type", pctx, type); !r) return r;
    if (type.empty()) return pctx.fail(p, who + "provider.type is required");
    if (type == "anthropic") s.provider = provider_kind::anthropic;
    else if (type == "openai") s.provider = provider_kind::openai;
    else return pctx.fail(p["type"], who + "unknown judge provider " + config::go_quote(type));
    const std::string prov = who + std::string(provider_name(s.provider)) + " provider: ";
    if (auto r = config::read_optional_string(p, "model", pctx, s.model); !r) return r;
    if (s.model.empty()) return pctx.fail(p, prov + "model is required");
    if (auto r = config::read_optional_string(p, "api_key_env", pctx, s.api_key_env); !r) return r;
    if (s.api_key_env.empty()) return pctx.fail(p, prov + "api_key_env is required");
    const char* key = std::getenv(s.api_key_env.c_str());
    if (key == nullptr || *key == '\0') return pctx.fail(p["api_key_env"], prov + "env var " + config::go_quote(s.api_key_env) + " is empty");
    s.api_key = key;
    if (auto r = config::read_optional_string(p, "base_url", pctx, base); !r) return r;
    if (base.empty()) base = std::string(default_base_url(s.provider));
    auto url = parse_base_url(base);
    if (!url) return pctx.fail(p["base_url"], prov + url.message());
    s.url = std::move(*url);
    return read_count(p, "max_tokens", pctx, s.max_tokens);
}

result<void> read_fallback(const YAML::Node& config, const config::yaml_ctx& ctx, judge_settings& s) {
    std::string fb;
    if (auto r = config::read_optional_string(config, "fallback", ctx, fb); !r) return r;
    if (fb.empty() || fb == "deny") s.fallback = fallback_mode::deny;
    else if (fb == "skip") s.fallback = fallback_mode::skip;
    else
        return ctx.fail(config["fallback"], "judge transform " + config::go_quote(s.name) + ": invalid fallback " +
                                                config::go_quote(fb) + ": must be \"deny\" or \"skip\"");
    return ok();
}

}  // namespace

result<std::unique_ptr<judge_transform>> judge_transform::from_config(const YAML::Node& config,
                                                                      const config::yaml_ctx& ctx) {
    if (config::is_absent(config)) return ctx.fail(config, "judge transform: name is required");
    if (auto r = config::expect_map(config, ctx, {"name", "prompt", "fallback", "max_concurrent", "timeout",
                                                  "circuit_breaker", "rules", "provider"});
        !r)
        return r.err();
    judge_settings s;
    if (auto r = config::read_optional_string(config, "name", ctx, s.name); !r) return r.err();
    if (s.name.empty()) return ctx.fail(config, "judge transform: name is required");
    const std::string who = "judge transform " + config::go_quote(s.name) + ": ";
    if (auto r = config::read_optional_string(config, "prompt", ctx, s.prompt); !r) return r.err();
    if (s.prompt.empty()) return ctx.fail(config, who + "prompt is required");
    auto rules = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(config, who + "at least one rule is required");
    if (auto r = read_fallback(config, ctx, s); !r) return r.err();
    if (auto r = read_provider(config, ctx, s); !r) return r.err();
    if (auto r = read_count(config, "max_concurrent", ctx, s.max_concurrent); !r) return r.err();
    if (auto r = read_duration(config, "timeout", ctx, s.timeout); !r) return r.err();
    if (auto r = read_breaker(config, ctx, s); !r) return r.err();
    auto client = llm_client::create(s.url);
    if (!client) return ctx.fail(config, who + client.message());
    return std::make_unique<judge_transform>(std::move(s), std::move(*rules), std::move(*client));
}

}  // namespace iron::transforms::judge
