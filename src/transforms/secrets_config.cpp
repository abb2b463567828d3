// Strict parsing of the secrets transform's three config shapes into secret_entry (see
// secrets.hpp), plus the inject formatter's parser.
#include <cctype>

#include "config/yaml_util.hpp"
#include "secrets/parse.hpp"
#include "transforms/secrets.hpp"

namespace iron::transforms {
namespace {

using config::yaml_ctx;
using entry_result = result<secret_entry>;

bool present(const YAML::Node& map, const char* key) { return !config::is_absent(map[key]); }

result<bool> opt_bool(const YAML::Node& map, const char* key, const yaml_ctx& ctx) {
    const YAML::Node n = map[key];
    if (config::is_absent(n)) return false;
    return config::get_bool(n, ctx.child(key));
}

result<std::string> opt_string(const YAML::Node& map, const char* key, const yaml_ctx& ctx) {
    const YAML::Node n = map[key];
    if (config::is_absent(n)) return std::string();
    return config::get_string(n, ctx.child(key));
}

// `match_headers`: a list of names and /regex/ entries ([] or absent = all headers), or the
// scalar `none` (header scanning off; Go has no way to say that).
result<void> parse_match_headers(const YAML::Node& map, const yaml_ctx& ctx, secret_entry& e) {
    const YAML::Node n = map["match_headers"];
    const yaml_ctx c = ctx.child("match_headers");
    if (config::is_absent(n)) return ok();
    if (n.IsScalar()) {
        if (n.Scalar() == "none") {
            e.headers = secret_entry::header_scope::none;
            return ok();
        }
        return c.fail(n, "expected a list of header names (or none), got " + config::go_quote(n.Scalar()));
    }
    auto patterns = parse_header_patterns(n, c);
    if (!patterns) return patterns.err();
    e.match_headers = std::move(*patterns);
    e.headers = e.match_headers.empty() ? secret_entry::header_scope::all : secret_entry::header_scope::listed;
    return ok();
}

// Fields shared by the seed entry, the legacy entry and the replace block.
result<void> parse_replace_fields(const YAML::Node& map, const yaml_ctx& ctx, bool query_path, secret_entry& e,
                                  const char* proxy_value_message) {
    e.what = secret_entry::mode::replace;
    auto pv = opt_string(map, "proxy_value", ctx);
    if (!pv) return pv.err();
    if (pv->empty()) return ctx.fail(present(map, "proxy_value") ? map["proxy_value"] : map, proxy_value_message);
    e.proxy_value = std::move(*pv);
    if (auto r = parse_match_headers(map, ctx, e); !r) return r.err();
    for (auto [key, field] : {std::pair{"match_body", &e.match_body}, std::pair{"require", &e.require}}) {
        auto b = opt_bool(map, key, ctx);
        if (!b) return b.err();
        *field = *b;
    }
    if (query_path) {
        for (auto [key, field] : {std::pair{"match_query", &e.match_query}, std::pair{"match_path", &e.match_path}}) {
            auto b = opt_bool(map, key, ctx);
            if (!b) return b.err();
            *field = *b;
        }
    }
    // allow_connect_without_header is accepted for compatibility and has no effect: this transform
    // never runs on the synthetic CONNECT check.
    if (auto b = opt_bool(map, "allow_connect_without_header", ctx); !b) return b.err();
    return ok();
}

result<void> parse_inject(const YAML::Node& block, const yaml_ctx& ctx, secret_entry& e, const yaml_ctx& entry_ctx) {
    if (auto r = config::expect_map(block, ctx, {"header", "query_param", "formatter", "require"}); !r) return r.err();
    e.what = secret_entry::mode::inject;
    auto header = opt_string(block, "header", ctx);
    if (!header) return header.err();
    auto query = opt_string(block, "query_param", ctx);
    if (!query) return query.err();
    if (header->empty() && query->empty()) return entry_ctx.fail(block, "inject must specify either header or query_param");
    if (!header->empty() && !query->empty()) return entry_ctx.fail(block, "inject cannot specify both header and query_param");
    e.inject_header = std::move(*header);
    e.inject_query_param = std::move(*query);
    auto fmt_text = opt_string(block, "formatter", ctx);
    if (!fmt_text) return fmt_text.err();
    auto fmt = formatter::parse(*fmt_text);
    if (!fmt) return ctx.child("formatter").fail(block["formatter"], "parsing formatter template: " + fmt.message());
    e.format = std::move(*fmt);
    auto req = opt_bool(block, "require", ctx);
    if (!req) return req.err();
    e.require = *req;
    return ok();
}

// Seed-era `hosts: [{name: glob} | {cidr: c}]` → host-only rules.
result<std::vector<pipeline::host_rule>> parse_hosts(const YAML::Node& entry, const yaml_ctx& ctx) {
    const YAML::Node hosts = entry["hosts"];
    const yaml_ctx c = ctx.child("hosts");
    const char* unbound =
        "at least one host is required: a secret is only swapped for the hosts it is bound to "
        "(use hosts: [{name: \"*\"}] to bind it to every host)";
    if (config::is_absent(hosts)) return ctx.fail(entry, std::string("hosts: ") + unbound);
    if (!hosts.IsSequence()) return c.fail(hosts, "expected a list of {name: glob} or {cidr: range}");
    if (hosts.size() == 0) return c.fail(hosts, unbound);
    std::vector<pipeline::host_rule> rules;
    for (std::size_t j = 0; j < hosts.size(); ++j) {
        const YAML::Node h = hosts[j];
        const yaml_ctx hc = c.index(j);
        if (auto r = config::expect_map(h, hc, {"name", "cidr"}); !r) return r.err();
        auto name = opt_string(h, "name", hc);
        if (!name) return name.err();
        auto cidr = opt_string(h, "cidr", hc);
        if (!cidr) return cidr.err();
        if (!name->empty() && !cidr->empty()) return hc.fail(h, "name and cidr are mutually exclusive");
        if (name->empty() && cidr->empty()) return hc.fail(h, "one of name or cidr is required");
        auto rule = name->empty() ? pipeline::cidr_only_rule(*cidr) : pipeline::host_only_rule(*name);
        if (!rule) return hc.fail(h, rule.message());
        rules.push_back(std::move(rule).value());
    }
    return rules;
}

entry_result parse_seed_entry(const YAML::Node& entry, const yaml_ctx& ctx) {
    if (auto r = config::expect_map(entry, ctx, {"var", "proxy_value", "match_headers", "match_body", "require", "hosts"});
        !r) {
        return r.err();
    }
    secret_entry e;
    auto var = opt_string(entry, "var", ctx);
    if (!var) return var.err();
    if (var->empty()) return ctx.fail(present(entry, "var") ? entry["var"] : entry, "var is required");
    if (auto r = parse_replace_fields(entry, ctx, false, e, "proxy_value is required"); !r) return r.err();
    e.match_query = true;  // the seed era always scanned query parameters
    auto rules = parse_hosts(entry, ctx);
    if (!rules) return rules.err();
    e.rules = pipeline::rule_set(std::move(*rules));
    e.source = secrets::make_env_source(std::move(*var));
    return e;
}

entry_result parse_current_entry(const YAML::Node& entry, const yaml_ctx& ctx) {
    if (auto r = config::expect_map(entry, ctx,
                                    {"source", "rules", "replace", "inject", "proxy_value", "match_headers",
                                     "match_body", "require", "allow_connect_without_header", "hosts"});
        !r) {
        return r.err();
    }
    if (present(entry, "hosts")) {
        return ctx.child("hosts").fail(entry["hosts"],
                                       "hosts is the seed-era key and is not used with a source block; bind the "
                                       "secret with rules: [{host: \"api.example.com\"}] instead");
    }
    // Mode checks first, in the Go proxy's order and wording.
    const bool legacy = present(entry, "proxy_value") || present(entry, "match_headers") ||
                        present(entry, "match_body") || present(entry, "require") ||
                        present(entry, "allow_connect_without_header");
    const bool has_replace = present(entry, "replace");
    const bool has_inject = present(entry, "inject");
    if (!legacy && !has_replace && !has_inject) return ctx.fail(entry, "must specify either inject or replace");
    if (legacy && has_replace) return ctx.fail(entry, "cannot use both top-level proxy_value/match_headers and replace block");
    if (legacy && has_inject) return ctx.fail(entry, "cannot use both top-level proxy_value/match_headers and inject block");
    if (has_replace && has_inject) return ctx.fail(entry, "cannot specify both inject and replace");

    secret_entry e;
    if (has_inject) {
        if (auto r = parse_inject(entry["inject"], ctx.child("inject"), e, ctx); !r) return r.err();
    } else if (has_replace) {
        const YAML::Node block = entry["replace"];
        const yaml_ctx rc = ctx.child("replace");
        if (auto r = config::expect_map(block, rc,
                                        {"proxy_value", "match_headers", "match_query", "match_path", "match_body",
                                         "require", "allow_connect_without_header"});
            !r) {
            return r.err();
        }
        if (auto r = parse_replace_fields(block, rc, true, e, "replace.proxy_value is required"); !r) return r.err();
    } else {
        if (auto r = parse_replace_fields(entry, ctx, false, e, "proxy_value is required"); !r) return r.err();
    }

    auto src = secrets::parse_source(entry["source"], ctx.child("source"));
    if (!src) return src.err();
    e.source = std::move(*src);

    auto rules = pipeline::parse_rules(entry["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) {
        return ctx.fail(present(entry, "rules") ? entry["rules"] : entry,
                        "rules: at least one rule is required: a secret is only used for the hosts it is bound to "
                        "(use rules: [{host: \"*\"}] to bind it to every host)");
    }
    e.rules = pipeline::rule_set(std::move(*rules));
    return e;
}

// --- formatter parsing ------------------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A Go string literal: "…" with the common escapes, or `raw`.
result<std::string> parse_literal(std::string_view tok) {
    if (tok.size() >= 2 && tok.front() == '`' && tok.back() == '`') return std::string(tok.substr(1, tok.size() - 2));
    if (tok.size() < 2 || tok.front() != '"' || tok.back() != '"') return make_error("bad string " + std::string(tok));
    std::string out;
    for (std::size_t i = 1; i + 1 < tok.size(); ++i) {
        char c = tok[i];
        if (c != '\\') {
            out.push_back(c);
            continue;
        }
        if (i + 2 >= tok.size()) return make_error("bad escape in " + std::string(tok));
        char n = tok[++i];
        switch (n) {
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'r': out.push_back('\r'); break;
            case '\\': out.push_back('\\'); break;
            case '"': out.push_back('"'); break;
            default: return make_error("unsupported escape \\" + std::string(1, n) + " in " + std::string(tok));
        }
    }
    return out;
}

// Split an action body into tokens; string literals may contain spaces.
result<std::vector<std::string>> tokenize(std::string_view body) {
    std::vector<std::string> toks;
    std::size_t i = 0;
    while (i < body.size()) {
        if (is_space(body[i])) {
            ++i;
            continue;
        }
        std::size_t start = i;
        if (body[i] == '"' || body[i] == '`') {
            const char q = body[i++];
            while (i < body.size() && body[i] != q) i += (q == '"' && body[i] == '\\') ? 2 : 1;
            if (i >= body.size()) return make_error("unterminated string");
            ++i;
        } else {
            while (i < body.size() && !is_space(body[i])) ++i;
        }
        toks.emplace_back(body.substr(start, i - start));
    }
    return toks;
}

}  // namespace

result<formatter> formatter::parse(std::string_view text) {
    formatter f;
    if (text.empty()) return f;  // identity
    f.identity_ = false;
    const std::string supported = " (supported: {{ .Value }} and {{ base64 \"prefix:\" .Value }})";
    std::size_t pos = 0;
    bool trim_next = false;
    while (pos <= text.size()) {
        std::size_t open = text.find("{{", pos);
        std::string literal(text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos));
        if (trim_next) {  // the previous action ended with " -}}"
            std::size_t keep = literal.find_first_not_of(" \t\r\n");
            literal.erase(0, keep == std::string::npos ? literal.size() : keep);
        }
        if (open == std::string_view::npos) {
            if (!literal.empty()) f.pieces_.push_back({piece::kind::text, literal, {}});
            break;
        }
        std::size_t body_start = open + 2;
        // "{{- " trims the whitespace before the action.
        if (text.substr(body_start, 2) == "- ") {
            literal.erase(literal.find_last_not_of(" \t\r\n") + 1);
            body_start += 1;
        }
        if (!literal.empty()) f.pieces_.push_back({piece::kind::text, literal, {}});
        // Find the closing braces outside string literals.
        std::size_t i = body_start;
        char quote = 0;
        for (; i + 1 < text.size(); ++i) {
            if (quote) {
                if (quote == '"' && text[i] == '\\') ++i;
                else if (text[i] == quote) quote = 0;
            } else if (text[i] == '"' || text[i] == '`') {
                quote = text[i];
            } else if (text[i] == '}' && text[i + 1] == '}') {
                break;
            }
        }
        if (i + 1 >= text.size()) return make_error("unclosed action");
        std::string_view body = text.substr(body_start, i - body_start);
        trim_next = body.size() >= 2 && body.substr(body.size() - 2) == " -";
        if (trim_next) body.remove_suffix(1);
        pos = i + 2;

        auto toks = tokenize(body);
        if (!toks) return make_error(toks.message());
        const std::string shown = "{{" + std::string(body) + "}}";
        if (toks->size() == 1 && (*toks)[0] == ".Value") {
            f.pieces_.push_back({piece::kind::value, {}, {}});
            continue;
        }
        if (!toks->empty() && (*toks)[0] == "base64") {
            piece p{piece::kind::base64, {}, {}};
            for (std::size_t k = 1; k < toks->size(); ++k) {
                const std::string& t = (*toks)[k];
                if (t == ".Value") {
                    p.args.push_back({true, {}});
                    continue;
                }
                auto lit = parse_literal(t);
                if (!lit) return make_error("unsupported argument " + t + " in " + shown + supported);
                p.args.push_back({false, std::move(*lit)});
            }
            f.pieces_.push_back(std::move(p));
            continue;
        }
        return make_error("unsupported action " + shown + supported);
    }
    return f;
}

result<std::unique_ptr<secrets_transform>> secrets_transform::from_config(const YAML::Node& config,
                                                                          const yaml_ctx& ctx) {
    std::vector<secret_entry> entries;
    if (config::is_absent(config)) return std::make_unique<secrets_transform>(std::move(entries));
    if (auto r = config::expect_map(config, ctx, {"source", "secrets", "redact_responses", "on_unavailable"}); !r)
        return r.err();
    // Off by default (the Go proxy passes responses unmodified); see secrets_redact.hpp.
    auto redact = opt_bool(config, "redact_responses", ctx);
    if (!redact) return redact.err();
    auto unavailable = opt_string(config, "on_unavailable", ctx);
    if (!unavailable) return unavailable.err();
    if (!unavailable->empty() && *unavailable != "forward" && *unavailable != "reject") {
        return ctx.child("on_unavailable")
            .fail(config["on_unavailable"], "must be \"forward\" (default) or \"reject\"; got " + config::go_quote(*unavailable));
    }
    const bool reject_unavailable = *unavailable == "reject";

    // The seed era put `source: env` at the transform level; today each entry has a source block.
    const YAML::Node source = config["source"];
    const bool seed = !config::is_absent(source);
    if (seed && !(source.IsScalar() && source.Scalar() == "env")) {
        return ctx.child("source").fail(source, "the transform-level source must be \"env\" (seed-era form); "
                                                "per-secret sources go in secrets[i].source");
    }
    const YAML::Node list = config["secrets"];
    const yaml_ctx lc = ctx.child("secrets");
    if (config::is_absent(list))
        return std::make_unique<secrets_transform>(std::move(entries), *redact, reject_unavailable);
    if (!list.IsSequence()) return lc.fail(list, "expected a list of secrets");
    for (std::size_t i = 0; i < list.size(); ++i) {
        auto e = seed ? parse_seed_entry(list[i], lc.index(i)) : parse_current_entry(list[i], lc.index(i));
        if (!e) return e.err();
        entries.push_back(std::move(e).value());
    }
    return std::make_unique<secrets_transform>(std::move(entries), *redact, reject_unavailable);
}

}  // namespace iron::transforms
