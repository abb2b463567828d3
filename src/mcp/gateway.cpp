#include "mcp/gateway.hpp"

#include <set>

#include <boost/json/array.hpp>

#include "config/yaml_util.hpp"
#include "core/header_name.hpp"
#include "core/host_glob.hpp"
#include "core/percent.hpp"
#include "core/port.hpp"
#include "mcp/record.hpp"
#include "secrets/parse.hpp"
#include "transforms/header_match.hpp"

namespace iron::mcp {
namespace {

using config::yaml_ctx;
using transforms::hmac_sign::go_template;

bool printable(std::string_view s) {
    for (unsigned char c : s)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}

// http(s)://host[:port][/path][?query]: where the route's requests go. No userinfo (a password
// there would reach the audit record; credentials are for that) and no fragment.
result<pipeline::rerouted_upstream> parse_upstream(std::string_view url) {
    pipeline::rerouted_upstream to;
    if (url.starts_with("https://")) to.tls = true;
    else if (!url.starts_with("http://")) return make_error("must use http or https");
    if (!printable(url)) return make_error("must be a valid URL (no spaces or control characters)");
    if (url.find('#') != std::string_view::npos) return make_error("must not include a fragment");
    std::string_view rest = url.substr(to.tls ? 8 : 7);
    const auto path_at = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, path_at);
    if (authority.find('@') != std::string_view::npos)
        return make_error("must not include userinfo (inject credentials with `credentials:`)");
    const auto hp = core::split_host_port(authority);
    if (hp.host.empty()) return make_error("must include a host");
    to.host = hp.host;
    to.port = to.tls ? 443 : 80;
    if (!hp.port.empty()) {
        auto port = core::parse_port(hp.port);
        if (!port) return make_error("has an invalid port " + config::go_quote(hp.port));
        to.port = *port;
    }
    to.authority = std::string(authority);
    std::string_view path_and_query = path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
    const auto q = path_and_query.find('?');
    std::string path(path_and_query.substr(0, q));
    if (path.empty()) path = "/";
    to.target = path;
    if (q != std::string_view::npos && q + 1 < path_and_query.size()) to.target += path_and_query.substr(q);
    return to;
}

result<gateway_credential> parse_credential(const YAML::Node& n, const yaml_ctx& ctx) {
    if (auto ok = config::expect_map(n, ctx, {"source", "inject", "require"}); !ok) return ok.err();
    gateway_credential cred;
    if (config::is_absent(n["source"])) return ctx.child("source").fail(n, "is required");
    auto src = secrets::parse_source(n["source"], ctx.child("source"));
    if (!src) return src.err();
    cred.source = std::move(*src);
    if (auto ok = config::read_optional_bool(n, "require", ctx, cred.require); !ok) return ok.err();

    const yaml_ctx ic = ctx.child("inject");
    const YAML::Node inject = n["inject"];
    if (config::is_absent(inject)) return ctx.fail(n, "inject must specify either header or query_param");
    if (auto ok = config::expect_map(inject, ic, {"header", "query_param", "formatter"}); !ok) return ok.err();
    std::string header, param, format;
    if (auto ok = config::read_optional_string(inject, "header", ic, header); !ok) return ok.err();
    if (auto ok = config::read_optional_string(inject, "query_param", ic, param); !ok) return ok.err();
    if (auto ok = config::read_optional_string(inject, "formatter", ic, format); !ok) return ok.err();
    if (header.empty() == param.empty())
        return ic.fail(inject, header.empty() ? "inject must specify either header or query_param"
                                              : "inject cannot specify both header and query_param");
    if (!header.empty()) {
        cred.header = core::canonical_header_name(header);
        cred.id = cred.source->name() + ":header:" + cred.header;
    } else {
        cred.query_param = param;
        cred.id = cred.source->name() + ":query:" + param;
    }
    if (!format.empty()) {
        auto tmpl = go_template::parse(ic.path + ".formatter", format, go_template::extensions{.base64 = true});
        if (!tmpl) return ic.child("formatter").fail(inject["formatter"], "parsing formatter: " + tmpl.message());
        for (const auto& field : tmpl->top_level_fields())
            if (field != "Value")
                return ic.child("formatter").fail(inject["formatter"], "the formatter can only use .Value, not ." + field);
        cred.formatter = std::move(*tmpl);
    }
    return cred;
}

result<gateway_route> parse_route(const YAML::Node& n, const yaml_ctx& ctx) {
    if (auto ok = config::expect_map(n, ctx, {"name", "rules", "upstream", "credentials"}); !ok) return ok.err();
    gateway_route r;
    if (auto ok = config::read_optional_string(n, "name", ctx, r.name); !ok) return ok.err();
    if (r.name.empty()) return ctx.fail(n, "name is required");
    auto rules = pipeline::parse_rules(n["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(n, "at least one rule is required");
    r.rules = pipeline::rule_set(std::move(*rules));
    if (auto ok = config::read_optional_string(n, "upstream", ctx, r.upstream); !ok) return ok.err();
    if (r.upstream.empty()) return ctx.fail(n, "upstream is required");
    auto to = parse_upstream(r.upstream);
    if (!to) return ctx.child("upstream").fail(n["upstream"], "upstream " + to.message());
    r.target = std::move(*to);
    const YAML::Node creds = n["credentials"];
    if (config::is_absent(creds)) return r;
    if (!creds.IsSequence()) return ctx.child("credentials").fail(creds, "expected a list");
    for (std::size_t i = 0; i < creds.size(); ++i) {
        auto c = parse_credential(creds[i], ctx.child("credentials").index(i));
        if (!c) return c.err();
        r.credentials.push_back(std::move(*c));
    }
    return r;
}

// The client's query with every parameter named `name` replaced by name=value (Go's Query().Set:
// one value; the other parameters keep their bytes and order here, where Go re-encodes them all).
std::string set_query_param(std::string_view query, std::string_view name, std::string_view value) {
    std::string out;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty() || core::percent_decode(pair.substr(0, pair.find('=')), true) == name) continue;
        if (!out.empty()) out += '&';
        out += pair;
    }
    if (!out.empty()) out += '&';
    return out + core::percent_encode(name) + "=" + core::percent_encode(value);
}

result<std::string> credential_value(const gateway_credential& c) {
    auto value = c.source->current();
    if (!value) return make_error("gateway credential " + config::go_quote(c.source->name()) + " unavailable: " + value.message());
    if (!c.formatter) return std::string(**value);
    const std::pair<std::string_view, std::string_view> fields[] = {{"Value", **value}};
    transforms::hmac_sign::template_data data{{std::begin(fields), std::end(fields)}, nullptr};
    auto formatted = c.formatter->render(data);
    if (!formatted) return make_error("formatting gateway credential " + config::go_quote(c.source->name()) + ": " + formatted.message());
    return formatted;
}

}  // namespace

std::vector<const secrets::source*> gateway_route::sources() const {
    std::vector<const secrets::source*> out;
    for (const auto& c : credentials) out.push_back(c.source.get());
    return out;
}

const gateway_route* gateway::match(const pipeline::exchange& ex) const {
    for (const auto& r : routes_)
        if (r.rules.matches_any(ex)) return &r;
    return nullptr;
}

bool gateway::any_pending() const {
    for (const auto& r : routes_)
        for (const auto& c : r.credentials)
            if (c.source->pending()) return true;
    return false;
}

void gateway::reload() const {
    for (const auto& r : routes_)
        for (const auto& c : r.credentials) c.source->reload();
}

result<void> route_request(const gateway_route& route, pipeline::exchange& ex, mcp_record& rec) {
    pipeline::rerouted_upstream to = route.target;
    std::string query = ex.raw_query;
    boost::json::array injected;
    for (const auto& c : route.credentials) {
        auto value = credential_value(c);
        if (!value) {
            if (c.require) return value.err();
            continue;
        }
        if (!c.header.empty()) to.headers.set(c.header, std::move(*value));
        else query = set_query_param(query, c.query_param, *value);
        injected.push_back(boost::json::value(c.id));
    }
    // The upstream's own query first, then the client's.
    if (!query.empty()) to.target += (to.target.find('?') == std::string::npos ? "?" : "&") + query;
    ex.reroute = std::move(to);
    boost::json::object g;
    g["route"] = route.name;
    g["upstream"] = route.upstream;
    g["credentials_injected"] = std::move(injected);
    rec.set_gateway(std::move(g));
    return ok();
}

result<std::optional<gateway>> parse_gateway(const YAML::Node& node, const std::string& file) {
    const yaml_ctx ctx{file, "mcp_gateway"};
    if (config::is_absent(node)) return std::optional<gateway>();
    if (auto ok = config::expect_map(node, ctx, {"routes"}); !ok) return ok.err();
    const YAML::Node routes = node["routes"];
    if (config::is_absent(routes)) return std::optional<gateway>();
    if (!routes.IsSequence()) return ctx.child("routes").fail(routes, "expected a list");
    std::vector<gateway_route> out;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const yaml_ctx rc = ctx.child("routes").index(i);
        auto r = parse_route(routes[i], rc);
        if (!r) return r.err();
        if (!seen.insert(r->name).second) return rc.fail(routes[i], "duplicate route name " + config::go_quote(r->name));
        out.push_back(std::move(*r));
    }
    if (out.empty()) return std::optional<gateway>();
    return std::optional<gateway>(gateway(std::move(out)));
}

}  // namespace iron::mcp
