// The config loader for the Go proxy's schema: strict YAML decode → IRON_* env overrides →
// defaults → validation in Go's order with Go's messages (first failure wins; the rules live in
// config/validate.cpp, fed the position of every value this loader read). Unlike Go, every
// positional message names file:line:col and the key path, and every sub-tree we decode is strict
// (Go ignores unknown keys inside transform configs, so a typo silently drops a setting).
//
// Extensions over the Go schema (all optional; absent ⇒ Go behaviour):
//   proxy.http_listens            list of extra plain-HTTP listeners, merged after proxy.http_listen
//   proxy.upstream_ca_file        extra PEM bundle trusted for upstream TLS
//   proxy.client_handshake_timeout / client_header_timeout / client_idle_timeout
//   proxy.upstream_connect_timeout / upstream_idle_timeout / shutdown_timeout
//                                 Go durations; "" / "0" ⇒ default, negative ⇒ error
//   log.audit_path                audit JSON lines go to this file (0600) instead of stderr
//   proxy.deny_body               "empty" (default) | "reason": responses the proxy makes carry
//                                 a one-line text/plain reason as their body
//   proxy.oversize_body           "reject" (default) | "forward": a request body larger than
//                                 max_request_body_bytes that a transform asked to see is either
//                                 answered 413 (and audited) or streamed upstream complete and
//                                 untouched, the transforms having seen only the prefix (trace
//                                 annotated body_truncated: true). Never forwarded truncated.
//   dns.records[].type: AAAA      in addition to A and CNAME
#include "config/config.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

#include "config/validate.hpp"
#include "upstream_proxy/selection.hpp"
#include "config/yaml_util.hpp"
#include "core/cidr.hpp"

namespace iron::config {

namespace {

#define IRON_CFG_TRY(expr)                   \
    do {                                     \
        auto try_r_ = (expr);                \
        if (!try_r_) return try_r_.err();    \
    } while (0)

using std::chrono::seconds;

constexpr std::int64_t k_default_max_request_body = 1048576;

std::optional<std::string> env_value(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;  // only non-empty variables override
    return std::string(v);
}

// Only used to tell "no document at all" (Go: io.EOF) from an empty document ("---").
class document_probe : public YAML::EventHandler {
public:
    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

class loader {
public:
    explicit loader(std::string file) : file_(std::move(file)), positions_(file_) {
        cfg_.source = file_;
        // Start from Go's zero values: "0 ⇒ default" is decided after the env overrides.
        cfg_.proxy.max_request_body_bytes = 0;
        cfg_.proxy.oversize_body.clear();
        cfg_.proxy.deny_body.clear();
        cfg_.proxy.upstream_response_header_timeout = duration(0);
        cfg_.proxy.client_handshake_timeout = duration(0);
        cfg_.proxy.client_header_timeout = duration(0);
        cfg_.proxy.client_idle_timeout = duration(0);
        cfg_.proxy.upstream_connect_timeout = duration(0);
        cfg_.proxy.upstream_idle_timeout = duration(0);
        cfg_.proxy.shutdown_timeout = duration(0);
        cfg_.tls.mode.clear();
        cfg_.tls.cert_cache_size = 0;
        cfg_.tls.leaf_cert_expiry_hours = 0;
        cfg_.log.level.clear();
        cfg_.metrics.listen.clear();
        cfg_.control_plane.poll_interval = duration(0);
    }

    result<config> run(const YAML::Node& root) {
        IRON_CFG_TRY(reject_duplicate_keys(root, file_));
        if (!is_absent(root)) IRON_CFG_TRY(parse_root(root));
        IRON_CFG_TRY(apply_env());
        apply_defaults();
        IRON_CFG_TRY(validate(cfg_, positions_));
        IRON_CFG_TRY(check_upstream_proxy());
        record_not_yet_supported();
        return std::move(cfg_);
    }

private:
    // --- positions, for validation's messages -------------------------------------------------
    void remember(const yaml_ctx& c, const YAML::Node& n) {
        try {
            const YAML::Mark m = n.Mark();
            if (m.is_null()) positions_.remember(c.path, 0, 0);  // in the file, but without a position
            else positions_.remember(c.path, m.line + 1, m.column + 1);
        } catch (const YAML::Exception&) {
        }
    }
    void forget(const std::string& path) { positions_.forget(path); }  // value now comes from the env

    // --- scalar readers: absent/null leaves the field untouched (Go zero-value semantics) ------
    result<void> read_string(const YAML::Node& v, const yaml_ctx& c, std::string& out) {
        if (is_absent(v)) return ok();
        auto s = get_string(v, c);
        if (!s) return s.err();
        out = std::move(*s);
        remember(c, v);
        return ok();
    }
    result<void> read_int64(const YAML::Node& v, const yaml_ctx& c, std::int64_t& out) {
        if (is_absent(v)) return ok();
        auto n = get_int(v, c);
        if (!n) return n.err();
        out = *n;
        remember(c, v);
        return ok();
    }
    result<void> read_int(const YAML::Node& v, const yaml_ctx& c, int& out) {
        std::int64_t n = 0;
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(read_int64(v, c, n));
        if (n < INT_MIN || n > INT_MAX) return c.fail(v, "integer out of range");
        out = static_cast<int>(n);
        return ok();
    }
    result<void> read_duration(const YAML::Node& v, const yaml_ctx& c, duration& out) {
        if (is_absent(v)) return ok();
        auto d = get_duration(v, c);
        if (!d) return d.err();
        out = *d;
        remember(c, v);
        return ok();
    }
    result<void> read_list(const YAML::Node& v, const yaml_ctx& c, std::vector<std::string>& out) {
        auto l = get_string_list(v, c);
        if (!l) return l.err();
        out = std::move(*l);
        remember(c, v);
        for (std::size_t i = 0; i < out.size(); ++i) remember(c.index(i), v[i]);
        return ok();
    }

    // --- sections ----------------------------------------------------------------------------
    result<void> parse_root(const YAML::Node& root) {
        yaml_ctx c{file_, ""};
        IRON_CFG_TRY(expect_map(root, c, {"dns", "proxy", "tls", "transforms", "mcp", "mcp_gateway", "postgres",
                                          "metrics", "management", "control_plane", "log"}));
        for (const auto& kv : root) {  // document order, so the first error in the file wins
            const std::string key = kv.first.Scalar();
            const YAML::Node& v = kv.second;
            yaml_ctx k = c.child(key);
            if (key == "dns") IRON_CFG_TRY(parse_dns(v, k));
            else if (key == "proxy") IRON_CFG_TRY(parse_proxy(v, k));
            else if (key == "tls") IRON_CFG_TRY(parse_tls(v, k));
            else if (key == "transforms") IRON_CFG_TRY(parse_transforms(v, k));
            else if (key == "metrics") IRON_CFG_TRY(parse_metrics(v, k));
            else if (key == "management") IRON_CFG_TRY(parse_management(v, k));
            else if (key == "control_plane") IRON_CFG_TRY(parse_control_plane(v, k));
            else if (key == "log") IRON_CFG_TRY(parse_log(v, k));
            else if (key == "mcp" || key == "mcp_gateway") {
                if (!is_absent(v) && !v.IsMap()) return k.fail(v, "expected a map");
                // Decoded (strictly) when the pipeline is built: mcp/policy.hpp, mcp/gateway.hpp.
                (key == "mcp" ? cfg_.mcp : cfg_.mcp_gateway) = v;
            } else if (!is_absent(v)) {
                // postgres: decoded by its own (future) module; must be a map. No ", ignored": it
                // gates traffic, so the app refuses to start without it.
                if (!v.IsMap()) return k.fail(v, "expected a map");
                later_sections_.push_back(k.where(v) + ": " + key + " (Postgres proxy): not yet supported");
            }
        }
        return ok();
    }

    result<void> parse_dns(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"enabled", "listen", "proxy_ip", "upstream_resolver", "passthrough", "records"}));
        auto& d = cfg_.dns;
        for (const auto& kv : v) {
            const std::string key = kv.first.Scalar();
            const YAML::Node& f = kv.second;
            yaml_ctx k = c.child(key);
            if (key == "enabled") {
                if (is_absent(f)) continue;  // Go *bool: null ⇒ default (true)
                auto b = get_bool(f, k);
                if (!b) return b.err();
                dns_enabled_ = *b;
                remember(k, f);
            } else if (key == "listen") IRON_CFG_TRY(read_string(f, k, d.listen));
            else if (key == "proxy_ip") IRON_CFG_TRY(read_string(f, k, d.proxy_ip));
            else if (key == "upstream_resolver") IRON_CFG_TRY(read_string(f, k, d.upstream_resolver));
            else if (key == "passthrough") IRON_CFG_TRY(read_list(f, k, d.passthrough));
            else if (key == "records") IRON_CFG_TRY(parse_records(f, k));
        }
        return ok();
    }

    result<void> parse_records(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        if (!v.IsSequence()) return c.fail(v, "expected a list");
        std::size_t i = 0;
        for (const auto& rec : v) {
            yaml_ctx rc = c.index(i++);
            IRON_CFG_TRY(expect_map(rec, rc, {"name", "type", "value"}));
            remember(rc, rec);
            dns_record r;
            IRON_CFG_TRY(read_string(rec["name"], rc.child("name"), r.name));
            IRON_CFG_TRY(read_string(rec["type"], rc.child("type"), r.type));
            IRON_CFG_TRY(read_string(rec["value"], rc.child("value"), r.value));
            cfg_.dns.records.push_back(std::move(r));
        }
        return ok();
    }

    result<void> parse_proxy(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(
            v, c,
            {"http_listen", "http_listens", "https_listen", "tunnel_listen", "max_request_body_bytes",
             "max_response_body_bytes", "upstream_response_header_timeout", "upstream_deny_cidrs", "upstream_proxy",
             "upstream_ca_file", "client_handshake_timeout", "client_header_timeout", "client_idle_timeout",
             "upstream_connect_timeout", "upstream_idle_timeout", "shutdown_timeout", "oversize_body", "deny_body",
             "transparent", "upstream_h2c", "upstream_h2_for_http1"}));
        auto& p = cfg_.proxy;
        std::string http_listen;
        std::vector<std::string> http_listens;
        for (const auto& kv : v) {
            const std::string key = kv.first.Scalar();
            const YAML::Node& f = kv.second;
            yaml_ctx k = c.child(key);
            if (key == "http_listen") IRON_CFG_TRY(read_string(f, k, http_listen));
            else if (key == "http_listens") IRON_CFG_TRY(read_list(f, k, http_listens));
            else if (key == "https_listen") IRON_CFG_TRY(read_string(f, k, p.https_listen));
            else if (key == "tunnel_listen") IRON_CFG_TRY(read_string(f, k, p.tunnel_listen));
            else if (key == "max_request_body_bytes") IRON_CFG_TRY(read_int64(f, k, p.max_request_body_bytes));
            else if (key == "max_response_body_bytes") IRON_CFG_TRY(read_int64(f, k, p.max_response_body_bytes));
            else if (key == "upstream_response_header_timeout")
                IRON_CFG_TRY(read_duration(f, k, p.upstream_response_header_timeout));
            else if (key == "upstream_deny_cidrs") {
                if (is_absent(f)) continue;  // null behaves like an absent key: defaults apply
                IRON_CFG_TRY(read_list(f, k, p.upstream_deny_cidrs));
                deny_cidrs_given_ = true;
            } else if (key == "upstream_proxy") IRON_CFG_TRY(parse_upstream_proxy(f, k));
            else if (key == "upstream_ca_file") IRON_CFG_TRY(read_string(f, k, p.upstream_ca_file));
            else if (key == "client_handshake_timeout") IRON_CFG_TRY(read_duration(f, k, p.client_handshake_timeout));
            else if (key == "client_header_timeout") IRON_CFG_TRY(read_duration(f, k, p.client_header_timeout));
            else if (key == "client_idle_timeout") IRON_CFG_TRY(read_duration(f, k, p.client_idle_timeout));
            else if (key == "upstream_connect_timeout") IRON_CFG_TRY(read_duration(f, k, p.upstream_connect_timeout));
            else if (key == "upstream_idle_timeout") IRON_CFG_TRY(read_duration(f, k, p.upstream_idle_timeout));
            else if (key == "shutdown_timeout") IRON_CFG_TRY(read_duration(f, k, p.shutdown_timeout));
            else if (key == "oversize_body") IRON_CFG_TRY(read_string(f, k, p.oversize_body));
            else if (key == "deny_body") IRON_CFG_TRY(read_string(f, k, p.deny_body));
            else if (key == "upstream_h2c") IRON_CFG_TRY(read_list(f, k, p.upstream_h2c));
            else if (key == "transparent") {
                if (is_absent(f)) continue;
                auto b = get_bool(f, k);
                if (!b) return b.err();
                p.transparent = *b;
            } else if (key == "upstream_h2_for_http1") {
                if (is_absent(f)) continue;
                auto b = get_bool(f, k);
                if (!b) return b.err();
                p.upstream_h2_for_http1 = *b;
            }
        }
        // Union, http_listen first, without repeats (binding one address twice would fail later).
        p.http_listens.clear();
        if (!http_listen.empty()) p.http_listens.push_back(http_listen);
        for (auto& l : http_listens) {
            bool dup = false;
            for (const auto& have : p.http_listens) dup = dup || have == l;
            if (!dup && !l.empty()) p.http_listens.push_back(l);
        }
        return ok();
    }

    result<void> parse_upstream_proxy(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"http_proxy", "https_proxy", "no_proxy"}));
        auto& u = cfg_.proxy.upstream_proxy;
        IRON_CFG_TRY(read_string(v["http_proxy"], c.child("http_proxy"), u.http_proxy));
        IRON_CFG_TRY(read_string(v["https_proxy"], c.child("https_proxy"), u.https_proxy));
        IRON_CFG_TRY(read_string(v["no_proxy"], c.child("no_proxy"), u.no_proxy));
        return ok();
    }

    result<void> parse_tls(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"mode", "ca_cert", "ca_key", "cert_cache_size", "leaf_cert_expiry_hours"}));
        auto& t = cfg_.tls;
        for (const auto& kv : v) {
            const std::string key = kv.first.Scalar();
            const YAML::Node& f = kv.second;
            yaml_ctx k = c.child(key);
            if (key == "mode") IRON_CFG_TRY(read_string(f, k, t.mode));
            else if (key == "ca_cert") IRON_CFG_TRY(read_string(f, k, t.ca_cert));
            else if (key == "ca_key") IRON_CFG_TRY(read_string(f, k, t.ca_key));
            else if (key == "cert_cache_size") IRON_CFG_TRY(read_int(f, k, t.cert_cache_size));
            else if (key == "leaf_cert_expiry_hours") IRON_CFG_TRY(read_int(f, k, t.leaf_cert_expiry_hours));
        }
        return ok();
    }

    result<void> parse_metrics(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"listen"}));
        return read_string(v["listen"], c.child("listen"), cfg_.metrics.listen);
    }

    result<void> parse_management(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"listen", "api_key_env", "state_path"}));
        IRON_CFG_TRY(read_string(v["listen"], c.child("listen"), cfg_.management.listen));
        IRON_CFG_TRY(read_string(v["state_path"], c.child("state_path"), cfg_.management.state_path));
        return read_string(v["api_key_env"], c.child("api_key_env"), cfg_.management.api_key_env);
    }

    result<void> parse_control_plane(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"poll_interval"}));
        control_plane_given_ = true;
        return read_duration(v["poll_interval"], c.child("poll_interval"), cfg_.control_plane.poll_interval);
    }

    result<void> parse_log(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        IRON_CFG_TRY(expect_map(v, c, {"level", "audit_path"}));
        IRON_CFG_TRY(read_string(v["level"], c.child("level"), cfg_.log.level));
        return read_string(v["audit_path"], c.child("audit_path"), cfg_.log.audit_path);
    }

    // Entries keep their raw config node; names are checked by the transform registry.
    result<void> parse_transforms(const YAML::Node& v, const yaml_ctx& c) {
        if (is_absent(v)) return ok();
        if (!v.IsSequence()) return c.fail(v, "expected a list");
        std::size_t i = 0;
        for (const auto& entry : v) {
            yaml_ctx ec = c.index(i++);
            IRON_CFG_TRY(expect_map(entry, ec, {"name", "config"}));
            transform_entry t;
            YAML::Node name = entry["name"];
            if (is_absent(name)) return ec.fail(entry, "name is required");
            auto n = get_string(name, ec.child("name"));
            if (!n) return n.err();
            if (n->empty()) return ec.child("name").fail(name, "must not be empty");
            t.name = std::move(*n);
            YAML::Node conf = entry["config"];
            // Not YAML::Clone: a clone loses the marks that transform errors report as file:line:col.
            // The node keeps its document alive (yaml-cpp nodes share ownership of their memory).
            if (conf.IsDefined()) t.config = conf;
            t.where = ec.where(entry);
            cfg_.transforms.push_back(std::move(t));
        }
        return ok();
    }

    // --- IRON_* env overrides, in Go's order; only non-empty variables count -------------------
    result<void> env_string(const char* name, std::string& out, const std::string& path) {
        if (auto v = env_value(name)) {
            out = *v;
            forget(path);
        }
        return ok();
    }
    template <class Int>
    result<void> env_int(const char* name, const char* fn, Int& out, const std::string& path) {
        if (auto v = env_value(name)) {
            auto n = go_parse_int(*v, fn, std::numeric_limits<Int>::min(), std::numeric_limits<Int>::max());
            if (!n) return make_error(std::string(name) + ": " + n.message());
            out = static_cast<Int>(*n);
            forget(path);
        }
        return ok();
    }
    result<void> env_duration(const char* name, duration& out, const std::string& path) {
        if (auto v = env_value(name)) {
            auto d = parse_go_duration(*v);
            if (!d) return make_error(std::string(name) + ": " + d.message());
            out = *d;
            forget(path);
        }
        return ok();
    }

    // Replaces the YAML list (and the defaults) as a whole, like an explicit key would.
    result<void> env_deny_cidrs() {
        auto v = env_value("IRON_PROXY_UPSTREAM_DENY_CIDRS");
        if (!v) return ok();
        auto cidrs = parse_deny_cidrs_list(*v);
        if (!cidrs) return make_error("IRON_PROXY_UPSTREAM_DENY_CIDRS: " + cidrs.message());
        auto& list = cfg_.proxy.upstream_deny_cidrs;
        for (std::size_t i = 0; i < list.size(); ++i) forget("proxy.upstream_deny_cidrs[" + std::to_string(i) + "]");
        forget("proxy.upstream_deny_cidrs");
        list = std::move(*cidrs);
        deny_cidrs_given_ = true;
        return ok();
    }

    result<void> apply_env() {
        if (auto v = env_value("IRON_DNS_ENABLED")) {
            auto b = go_parse_bool(*v);
            if (!b) return make_error("IRON_DNS_ENABLED: " + b.message());
            dns_enabled_ = *b;
            forget("dns.enabled");
        }
        auto& p = cfg_.proxy;
        IRON_CFG_TRY(env_string("IRON_DNS_LISTEN", cfg_.dns.listen, "dns.listen"));
        IRON_CFG_TRY(env_string("IRON_DNS_PROXY_IP", cfg_.dns.proxy_ip, "dns.proxy_ip"));
        IRON_CFG_TRY(env_string("IRON_DNS_UPSTREAM_RESOLVER", cfg_.dns.upstream_resolver, "dns.upstream_resolver"));
        if (auto v = env_value("IRON_PROXY_HTTP_LISTEN")) p.http_listens = {*v};  // replaces both keys
        IRON_CFG_TRY(env_string("IRON_PROXY_HTTPS_LISTEN", p.https_listen, "proxy.https_listen"));
        IRON_CFG_TRY(env_string("IRON_PROXY_TUNNEL_LISTEN", p.tunnel_listen, "proxy.tunnel_listen"));
        IRON_CFG_TRY(env_int("IRON_PROXY_MAX_REQUEST_BODY_BYTES", "ParseInt", p.max_request_body_bytes,
                             "proxy.max_request_body_bytes"));
        IRON_CFG_TRY(env_int("IRON_PROXY_MAX_RESPONSE_BODY_BYTES", "ParseInt", p.max_response_body_bytes,
                             "proxy.max_response_body_bytes"));
        IRON_CFG_TRY(env_duration("IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT", p.upstream_response_header_timeout,
                                  "proxy.upstream_response_header_timeout"));
        IRON_CFG_TRY(env_deny_cidrs());
        IRON_CFG_TRY(env_string("IRON_TLS_MODE", cfg_.tls.mode, "tls.mode"));
        IRON_CFG_TRY(env_string("IRON_TLS_CA_CERT", cfg_.tls.ca_cert, "tls.ca_cert"));
        IRON_CFG_TRY(env_string("IRON_TLS_CA_KEY", cfg_.tls.ca_key, "tls.ca_key"));
        IRON_CFG_TRY(env_int("IRON_TLS_CERT_CACHE_SIZE", "Atoi", cfg_.tls.cert_cache_size, "tls.cert_cache_size"));
        IRON_CFG_TRY(env_int("IRON_TLS_LEAF_CERT_EXPIRY_HOURS", "Atoi", cfg_.tls.leaf_cert_expiry_hours,
                             "tls.leaf_cert_expiry_hours"));
        IRON_CFG_TRY(env_string("IRON_METRICS_LISTEN", cfg_.metrics.listen, "metrics.listen"));
        IRON_CFG_TRY(env_string("IRON_MANAGEMENT_LISTEN", cfg_.management.listen, "management.listen"));
        IRON_CFG_TRY(env_string("IRON_MANAGEMENT_STATE_PATH", cfg_.management.state_path, "management.state_path"));
        IRON_CFG_TRY(env_string("IRON_LOG_LEVEL", cfg_.log.level, "log.level"));
        IRON_CFG_TRY(env_duration("IRON_CONTROL_PLANE_POLL_INTERVAL", cfg_.control_plane.poll_interval,
                                  "control_plane.poll_interval"));
        // Upper case first, like Go's httpproxy.FromEnvironment.
        auto& u = p.upstream_proxy;
        for (auto [name, field] : {std::pair{"HTTP_PROXY", &u.http_proxy}, std::pair{"http_proxy", &u.http_proxy},
                                   std::pair{"HTTPS_PROXY", &u.https_proxy}, std::pair{"https_proxy", &u.https_proxy},
                                   std::pair{"NO_PROXY", &u.no_proxy}, std::pair{"no_proxy", &u.no_proxy}}) {
            std::string& src = proxy_env_source_[field];
            if (!src.empty()) continue;  // the upper-case variable already won
            if (auto v = env_value(name)) {
                *field = *v;
                src = name;
                forget(std::string("proxy.upstream_proxy.") + (field == &u.http_proxy    ? "http_proxy"
                                                               : field == &u.https_proxy ? "https_proxy"
                                                                                         : "no_proxy"));
            }
        }
        return ok();
    }

    void apply_defaults() {
        auto& d = cfg_.dns;
        d.enabled = dns_enabled_.value_or(true);
        if (d.enabled && d.listen.empty()) d.listen = ":53";
        auto& p = cfg_.proxy;
        if (p.http_listens.empty()) p.http_listens = {":80"};
        if (p.https_listen.empty()) p.https_listen = ":443";
        if (p.max_request_body_bytes == 0) p.max_request_body_bytes = k_default_max_request_body;
        if (p.oversize_body.empty()) p.oversize_body = "reject";
        if (p.deny_body.empty()) p.deny_body = "empty";
        auto dflt = [](duration& v, duration def) {
            if (v == duration(0)) v = def;
        };
        dflt(p.upstream_response_header_timeout, seconds(30));
        const proxy_config fresh;  // the extension defaults live in config.hpp
        dflt(p.client_handshake_timeout, fresh.client_handshake_timeout);
        dflt(p.client_header_timeout, fresh.client_header_timeout);
        dflt(p.client_idle_timeout, fresh.client_idle_timeout);
        dflt(p.upstream_connect_timeout, fresh.upstream_connect_timeout);
        dflt(p.upstream_idle_timeout, fresh.upstream_idle_timeout);
        dflt(p.shutdown_timeout, fresh.shutdown_timeout);
        if (!deny_cidrs_given_) p.upstream_deny_cidrs = core::default_upstream_deny_cidrs();
        if (cfg_.tls.mode.empty()) cfg_.tls.mode = "mitm";
        if (cfg_.tls.cert_cache_size == 0) cfg_.tls.cert_cache_size = 1000;
        if (cfg_.tls.leaf_cert_expiry_hours == 0) cfg_.tls.leaf_cert_expiry_hours = 72;
        if (cfg_.metrics.listen.empty()) cfg_.metrics.listen = ":9090";
        if (cfg_.log.level.empty()) cfg_.log.level = "info";
        dflt(cfg_.control_plane.poll_interval, seconds(10));
        if (!cfg_.management.listen.empty() && cfg_.management.api_key_env.empty()) {
            cfg_.management.api_key_env = "IRON_MANAGEMENT_API_KEY";
        }
    }

    // The parent proxy URLs, from the file or the environment: a URL we cannot use refuses to start
    // (and -check says where), never sends traffic around the parent. Messages never hold the
    // password (upstream_proxy::parse_parent leaves it out).
    result<void> check_upstream_proxy() {
        const auto& u = cfg_.proxy.upstream_proxy;
        auto chain = upstream_proxy::make_selector(u.http_proxy, u.https_proxy, u.no_proxy);
        if (chain) return ok();
        const std::string& msg = chain.message();  // "<key>: <why>"
        const std::string key = msg.substr(0, msg.find(':'));
        const std::string* field = key == "http_proxy" ? &u.http_proxy : &u.https_proxy;
        std::string path = "proxy.upstream_proxy." + key;
        std::string named = path;
        auto src = proxy_env_source_.find(field);
        if (src != proxy_env_source_.end() && !src->second.empty()) named += " (from $" + src->second + ")";
        return positions_.fail_at(path, named + msg.substr(key.size()));
    }

    // Accepted-but-unimplemented features, for the app to report (or refuse) at startup.
    void record_not_yet_supported() {
        auto& out = cfg_.not_yet_supported;
        if (control_plane_given_) out.push_back("control_plane (managed mode): not yet supported, ignored");
        cfg_.refused_sections = later_sections_;
    }

    std::string file_;
    value_positions positions_;  // key path → where the value sits in the file
    config cfg_;
    std::optional<bool> dns_enabled_;
    bool deny_cidrs_given_ = false;
    bool control_plane_given_ = false;
    std::vector<std::string> later_sections_;
    std::map<const std::string*, std::string> proxy_env_source_;  // upstream_proxy field → env var used
};

std::string mark_prefix(const std::string& file, const YAML::Mark& m) {
    if (m.is_null()) return file;
    return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

}  // namespace

raw_node::raw_node() : node_(std::make_shared<const YAML::Node>()) {}
raw_node::raw_node(const YAML::Node& node) : node_(std::make_shared<const YAML::Node>(node)) {}
const YAML::Node& raw_node::node() const { return *node_; }

result<config> load_string(std::string_view yaml_text, const std::string& source_name) {
    try {
        std::string text(yaml_text);
        {
            // Go's decoder reports io.EOF for a stream without any document (empty/comments only).
            std::istringstream in(text);
            YAML::Parser parser(in);
            document_probe probe;
            if (!parser.HandleNextDocument(probe)) return make_error(source_name + ": parsing config: EOF");
        }
        YAML::Node root = YAML::Load(text);  // first document only, like Go
        loader l(source_name);
        return l.run(root);
    } catch (const YAML::Exception& e) {
        return make_error(mark_prefix(source_name, e.mark) + ": parsing config: " + e.msg);
    } catch (const std::exception& e) {
        return make_error(source_name + ": parsing config: " + e.what());
    }
}

result<config> load_file(const std::string& path) {
    if (path.rfind("s3://", 0) == 0) return make_error(path + ": s3:// config paths are not supported yet");
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return make_error(path + ": reading config: is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": reading config: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error(path + ": reading config: " + std::strerror(errno));
    return load_string(ss.str(), path);
}

}  // namespace iron::config
