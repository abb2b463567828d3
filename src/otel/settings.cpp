#include "otel/settings.hpp"

#include <cstdlib>
#include <string_view>

#include "core/port.hpp"
#include "core/percent.hpp"

namespace iron::otel {

namespace {

constexpr std::string_view grpc_export_path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}


// The LOGS twin wins over the generic variable; unset and empty are the same.
struct env_reader {
    const env_lookup& env;
    const char* get(const char* name) const {
        const char* v = env(name);
        return v && *v ? v : nullptr;
    }
    // Value and the name it came from.
    std::optional<std::pair<std::string, std::string>> otlp(std::string_view suffix) const {
        const std::string logs = "OTEL_EXPORTER_OTLP_LOGS_" + std::string(suffix);
        if (const char* v = get(logs.c_str())) return std::pair{std::string(v), logs};
        const std::string generic = "OTEL_EXPORTER_OTLP_" + std::string(suffix);
        if (const char* v = get(generic.c_str())) return std::pair{std::string(v), generic};
        return std::nullopt;
    }
};

result<protocol> parse_protocol(const env_reader& env) {
    auto p = env.otlp("PROTOCOL");
    if (!p) return protocol::http_protobuf;
    const std::string v(trim(p->first));
    if (v == "http/protobuf") return protocol::http_protobuf;
    if (v == "grpc") return protocol::grpc;
    return make_error(p->second + ": unsupported protocol \"" + v + "\" (want http/protobuf or grpc)");
}

result<endpoint> parse_url(std::string_view url, const std::string& var) {
    endpoint ep;
    std::string_view rest;
    if (url.starts_with("http://")) {
        rest = url.substr(7);
    } else if (url.starts_with("https://")) {
        ep.tls = true;
        rest = url.substr(8);
    } else {
        return make_error(var + ": want an http:// or https:// URL");
    }
    const std::size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
    if (authority.find('@') != std::string_view::npos) return make_error(var + ": credentials in the URL are not supported (use the HEADERS variable)");
    std::string_view port_text;
    if (authority.starts_with("[")) {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return make_error(var + ": unterminated IPv6 address");
        ep.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':') return make_error(var + ": bad host");
        if (!after.empty()) port_text = after.substr(1);
    } else {
        const std::size_t colon = authority.rfind(':');
        ep.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    }
    if (ep.host.empty()) return make_error(var + ": no host");
    if (port_text.empty()) {
        ep.port = ep.tls ? 443 : 80;
    } else if (auto port = core::parse_port(port_text)) {
        ep.port = *port;
    } else {
        return make_error(var + ": bad port");
    }
    ep.target = target.empty() ? "/" : std::string(target);
    return ep;
}

// The generic endpoint is a base URL: /v1/logs is appended to its path (OTLP exporter spec); the
// logs endpoint is used as it is. gRPC ignores the path: the method names the service.
result<endpoint> parse_endpoint(const env_reader& env, protocol proto) {
    const char* logs = env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
    const char* generic = env.get("OTEL_EXPORTER_OTLP_ENDPOINT");
    const std::string var = logs ? "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
    auto ep = parse_url(trim(logs ? logs : generic), var);
    if (!ep) return ep.err();
    if (proto == protocol::grpc) {
        ep->target = std::string(grpc_export_path);
    } else if (!logs) {
        std::string path = ep->target.substr(0, ep->target.find('?'));
        if (!path.ends_with("/")) path += "/";
        ep->target = path + "v1/logs";
    }
    ep->text = std::string(ep->tls ? "https://" : "http://") + ep->authority() + ep->target;
    return ep;
}

result<std::chrono::milliseconds> parse_millis(const env_reader& env, const char* name,
                                               std::chrono::milliseconds fallback) {
    const char* v = env.get(name);
    if (!v) return fallback;
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    if (end == v || !trim(end).empty() || n < 0) return make_error(std::string(name) + ": want milliseconds, got \"" + v + "\"");
    return std::chrono::milliseconds(n);
}

result<std::size_t> parse_count(const env_reader& env, const char* name, std::size_t fallback) {
    const char* v = env.get(name);
    if (!v) return fallback;
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    if (end == v || !trim(end).empty() || n <= 0) return make_error(std::string(name) + ": want a positive count, got \"" + v + "\"");
    return static_cast<std::size_t>(n);
}

result<void> read_transport(const env_reader& env, settings& s) {
    if (auto h = env.otlp("HEADERS")) {
        auto kv = parse_key_values(h->first);
        if (!kv) return make_error(h->second + ": " + kv.message());  // never the value: credentials
        s.headers = std::move(*kv);
    }
    if (auto c = env.otlp("COMPRESSION")) {
        const std::string v(trim(c->first));
        if (v == "gzip") s.gzip = true;
        else if (v != "none") return make_error(c->second + ": unsupported compression \"" + v + "\" (want gzip or none)");
    }
    const char* timeout_var = env.get("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT") ? "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT" : "OTEL_EXPORTER_OTLP_TIMEOUT";
    auto t = parse_millis(env, timeout_var, s.timeout);
    if (!t) return t.err();
    s.timeout = *t;
    if (auto v = env.otlp("CERTIFICATE")) s.ca_file = v->first;
    if (auto v = env.otlp("CLIENT_CERTIFICATE")) s.client_cert_file = v->first;
    if (auto v = env.otlp("CLIENT_KEY")) s.client_key_file = v->first;
    if (s.client_cert_file.empty() != s.client_key_file.empty())
        return make_error("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together");
    return ok();
}

result<void> read_batching(const env_reader& env, settings& s) {
    auto queue = parse_count(env, "OTEL_BLRP_MAX_QUEUE_SIZE", s.max_queue);
    if (!queue) return queue.err();
    auto batch = parse_count(env, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", s.max_batch);
    if (!batch) return batch.err();
    auto delay = parse_millis(env, "OTEL_BLRP_SCHEDULE_DELAY", s.schedule_delay);
    if (!delay) return delay.err();
    auto budget = parse_millis(env, "OTEL_BLRP_EXPORT_TIMEOUT", s.export_timeout);
    if (!budget) return budget.err();
    s.max_queue = *queue;
    s.max_batch = std::min(*batch, *queue);  // the SDK spec: a batch never exceeds the queue
    s.schedule_delay = *delay;
    s.export_timeout = *budget;
    return ok();
}

result<void> read_resource(const env_reader& env, settings& s) {
    key_values attrs;
    if (const char* r = env.get("OTEL_RESOURCE_ATTRIBUTES")) {
        auto kv = parse_key_values(r);
        if (!kv) return make_error("OTEL_RESOURCE_ATTRIBUTES: " + kv.message());
        attrs = std::move(*kv);
    }
    // service.name: OTEL_SERVICE_NAME, else the resource attribute, else iron-proxy.
    std::string service = "iron-proxy";
    for (const auto& [k, v] : attrs)
        if (k == "service.name") service = v;
    if (const char* n = env.get("OTEL_SERVICE_NAME")) service = n;
    s.resource.emplace_back("service.name", service);
    for (auto& kv : attrs)
        if (kv.first != "service.name") s.resource.push_back(std::move(kv));
    return ok();
}

}  // namespace

std::string endpoint::authority() const {
    const bool v6 = host.find(':') != std::string::npos;
    std::string out = v6 ? "[" + host + "]" : host;
    if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
    return out;
}

result<key_values> parse_key_values(const std::string& text) {
    key_values out;
    std::string_view rest = text;
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        std::string_view item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty()) continue;
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) return make_error("entry " + std::to_string(out.size() + 1) + " has no '='");
        std::string key = core::percent_decode(trim(item.substr(0, eq)));
        if (key.empty()) return make_error("entry " + std::to_string(out.size() + 1) + " has an empty key");
        out.emplace_back(std::move(key), core::percent_decode(trim(item.substr(eq + 1))));
    }
    return out;
}

result<std::optional<settings>> settings_from_env(const env_lookup& lookup) {
    const env_reader env{lookup};
    // The protocol is checked even with export off: a typo should not wait for the endpoint.
    auto proto = parse_protocol(env);
    if (!proto) return proto.err();
    if (!env.get("OTEL_EXPORTER_OTLP_ENDPOINT") && !env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"))
        return std::optional<settings>();
    settings s;
    s.proto = *proto;
    auto where = parse_endpoint(env, s.proto);
    if (!where) return where.err();
    s.where = std::move(*where);
    if (auto r = read_transport(env, s); !r) return r.err();
    if (auto r = read_batching(env, s); !r) return r.err();
    if (auto r = read_resource(env, s); !r) return r.err();
    return std::optional<settings>(std::move(s));
}

result<std::optional<settings>> settings_from_env() {
    return settings_from_env([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace iron::otel
