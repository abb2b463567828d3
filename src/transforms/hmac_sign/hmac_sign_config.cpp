// hmac_sign_transform::from_config: the `hmac_sign` config block, parsed strictly (unknown keys
// are errors) and checked in the Go proxy's order with its messages.
#include <algorithm>

#include "config/yaml_util.hpp"
#include "core/log.hpp"
#include "secrets/parse.hpp"
#include "transforms/hmac_sign/hmac_sign.hpp"

namespace iron::transforms::hmac_sign {
namespace {

using config::go_quote;

result<std::string> opt_string(const YAML::Node& map, std::string_view key, const config::yaml_ctx& ctx) {
    const YAML::Node n = map[std::string(key)];
    if (config::is_absent(n)) return std::string();
    return config::get_string(n, ctx.child(key));
}

// One of `names` (the first is also what "" means); else Go's "unknown <what> \"x\" (want a|b)".
template <class E>
result<E> pick(const std::string& text, std::initializer_list<std::pair<std::string_view, E>> names, std::string_view what) {
    if (text.empty()) return names.begin()->second;
    std::string want;
    for (const auto& [n, e] : names) {
        if (n == text) return e;
        want += (want.empty() ? "" : "|") + std::string(n);
    }
    return make_error("hmac_sign: unknown " + std::string(what) + " " + go_quote(text) + " (want " + want + ")");
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

result<void> read_encodings(const YAML::Node& config, const config::yaml_ctx& ctx, hmac_settings& s) {
    const YAML::Node ts = config["timestamp"];
    std::string format;
    if (!config::is_absent(ts)) {
        if (auto r = config::expect_map(ts, ctx.child("timestamp"), {"format"}); !r) return r;
        auto f = opt_string(ts, "format", ctx.child("timestamp"));
        if (!f) return f.err();
        format = *f;
    }
    const YAML::Node sig = config["signature"];
    const auto sctx = ctx.child("signature");
    if (config::is_absent(sig)) return ctx.fail(config, "hmac_sign: signature.message is required");
    if (auto r = config::expect_map(sig, sctx, {"algorithm", "key_encoding", "output_encoding", "message"}); !r) return r;
    std::string fields[3];
    const char* names[3] = {"algorithm", "key_encoding", "output_encoding"};
    for (int i = 0; i < 3; ++i) {
        auto v = opt_string(sig, names[i], sctx);
        if (!v) return v.err();
        fields[i] = *v;
    }
    auto t = pick<timestamp_format>(format, {{"unix_seconds", timestamp_format::unix_seconds}, {"unix_millis", timestamp_format::unix_millis},
                                             {"unix_nanos", timestamp_format::unix_nanos}, {"rfc3339", timestamp_format::rfc3339}},
                                    "timestamp.format");
    if (!t) return ctx.fail(ts, t.message());
    auto a = pick<digest>(fields[0], {{"sha256", digest::sha256}, {"sha512", digest::sha512}, {"sha1", digest::sha1}},
                          "signature.algorithm");
    if (!a) return sctx.fail(sig, a.message());
    auto k = pick<key_encoding>(fields[1], {{"raw", key_encoding::raw}, {"base64", key_encoding::base64}, {"hex", key_encoding::hex}},
                                "signature.key_encoding");
    if (!k) return sctx.fail(sig, k.message());
    auto o = pick<output_encoding>(fields[2], {{"base64", output_encoding::base64}, {"hex", output_encoding::hex}},
                                   "signature.output_encoding");
    if (!o) return sctx.fail(sig, o.message());
    s.timestamp = *t;
    s.algorithm = *a;
    s.key = *k;
    s.output = *o;
    auto message = opt_string(sig, "message", sctx);
    if (!message) return message.err();
    if (message->empty()) return sctx.fail(sig, "hmac_sign: signature.message is required");
    auto tmpl = go_template::parse("hmac_sign.message", *message);
    if (!tmpl) return sctx.child("message").fail(sig["message"], "hmac_sign: parsing signature.message: " + tmpl.message());
    s.message = std::move(*tmpl);
    return ok();
}

result<void> read_headers(const YAML::Node& config, const config::yaml_ctx& ctx, hmac_settings& s) {
    const YAML::Node list = config["headers"];
    const auto hctx = ctx.child("headers");
    if (config::is_absent(list) || (list.IsSequence() && list.size() == 0))
        return ctx.fail(config, "hmac_sign: at least one entry in \"headers\" is required");
    if (!list.IsSequence()) return hctx.fail(list, "expected a list of {name, value}");
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto ictx = hctx.index(i);
        const std::string at = "hmac_sign: headers[" + std::to_string(i) + "]";
        if (auto r = config::expect_map(list[i], ictx, {"name", "value"}); !r) return r;
        auto name = opt_string(list[i], "name", ictx);
        if (!name) return name.err();
        auto value = opt_string(list[i], "value", ictx);
        if (!value) return value.err();
        if (name->empty()) return ictx.fail(list[i], at + ".name is required");
        if (value->empty()) return ictx.fail(list[i], at + ".value is required");
        if (!is_token(*name)) return ictx.fail(list[i]["name"], at + ".name " + go_quote(*name) + " is not a valid header name");
        auto tmpl = go_template::parse("hmac_sign.header[" + std::to_string(i) + "]", *value);
        if (!tmpl) return ictx.fail(list[i]["value"], "hmac_sign: parsing headers[" + std::to_string(i) + "].value: " + tmpl.message());
        s.headers.push_back({std::move(*name), std::move(*tmpl)});
    }
    return ok();
}

result<void> read_credentials(const YAML::Node& config, const config::yaml_ctx& ctx, hmac_settings& s) {
    const YAML::Node creds = config["credentials"];
    const auto cctx = ctx.child("credentials");
    if (config::is_absent(creds) || (creds.IsMap() && creds.size() == 0))
        return ctx.fail(config, "hmac_sign: \"credentials\" must include at least \"secret\"");
    if (!creds.IsMap()) return cctx.fail(creds, "expected a map of name → secret source");
    if (config::is_absent(creds["secret"]))
        return cctx.fail(creds, "hmac_sign: \"credentials\" must include \"secret\" (the HMAC key)");
    for (const auto& kv : creds) {
        const std::string name = kv.first.as<std::string>();
        auto src = secrets::parse_source(kv.second, cctx.child(name));
        if (!src) return src.err();
        s.credentials.emplace_back(name, std::move(*src));
    }
    std::sort(s.credentials.begin(), s.credentials.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return ok();
}

// Fields a template names that its data will not have: each such request would fail, which is
// what Go does; say so once at load time too.
void warn_unknown_fields(const hmac_settings& s) {
    static constexpr std::string_view message_fields[] = {"Timestamp", "Method", "Path", "PathWithQuery", "Query", "Host", "Body"};
    static constexpr std::string_view header_fields[] = {"Timestamp", "Signature", "Credentials"};
    auto check = [](const go_template& t, auto& known, const std::string& where) {
        for (const auto& f : t.top_level_fields())
            if (std::find(std::begin(known), std::end(known), f) == std::end(known))
                log::warn("hmac_sign: template field does not exist; matching requests will fail",
                          {{"template", where}, {"field", f}});
    };
    check(s.message, message_fields, "signature.message");
    for (std::size_t i = 0; i < s.headers.size(); ++i) check(s.headers[i].value, header_fields, "headers[" + std::to_string(i) + "].value");
}

}  // namespace

result<std::unique_ptr<hmac_sign_transform>> hmac_sign_transform::from_config(const YAML::Node& config, const config::yaml_ctx& ctx) {
    if (config::is_absent(config)) return ctx.fail(config, "hmac_sign: signature.message is required");
    if (auto r = config::expect_map(config, ctx, {"timestamp", "signature", "credentials", "headers", "allow_chunked_body", "rules"}); !r)
        return r.err();
    hmac_settings s;
    if (auto r = read_encodings(config, ctx, s); !r) return r.err();
    if (auto r = read_headers(config, ctx, s); !r) return r.err();
    if (auto r = read_credentials(config, ctx, s); !r) return r.err();
    if (const YAML::Node n = config["allow_chunked_body"]; !config::is_absent(n)) {
        auto b = config::get_bool(n, ctx.child("allow_chunked_body"));
        if (!b) return b.err();
        s.allow_chunked_body = *b;
    }
    auto rules = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(config, "hmac_sign: at least one entry in \"rules\" is required");
    warn_unknown_fields(s);
    return std::make_unique<hmac_sign_transform>(std::move(s), std::move(*rules));
}

}  // namespace iron::transforms::hmac_sign
