// Config validation: the Go proxy's checks in its order and with its messages (first failure wins),
// then range checks on our extensions, which Go leaves unchecked. Positions come from the loader.
#include "config/validate.hpp"

#include <arpa/inet.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "config/yaml_util.hpp"
#include "core/host_glob.hpp"

namespace iron::config {

namespace {

constexpr int k_max_leaf_expiry_hours = 8760 * 10;

// Like the loader's IRON_* reading: an empty variable counts as unset.
bool env_is_set(const std::string& name) {
    const char* v = std::getenv(name.c_str());
    return v != nullptr && *v != '\0';
}

// A CIDR check with netip.ParsePrefix's rules and messages; returns "" when valid. Kept local (not
// core::cidr) so the config module has no link dependency; core re-parses the list at startup.
std::string check_cidr(const std::string& s) {
    if (s.find('/') == std::string::npos) return "must be CIDR notation, e.g. 1.2.3.4/32 or ::1/128";
    std::string head = "netip.ParsePrefix(" + go_quote(s) + "): ";
    std::size_t slash = s.rfind('/');
    std::string addr = s.substr(0, slash), bits = s.substr(slash + 1);
    unsigned char buf[16];
    int max_bits = 32;
    if (inet_pton(AF_INET, addr.c_str(), buf) != 1) {
        if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
            return head + "ParseAddr(" + go_quote(addr) + "): unable to parse IP";
        }
        max_bits = 128;
    }
    std::string bad_bits = head + "bad bits after slash: " + go_quote(bits);
    if (bits.empty() || bits.size() > 3 || (bits.size() > 1 && (bits[0] < '1' || bits[0] > '9'))) return bad_bits;
    int n = 0;
    for (char c : bits) {
        if (c < '0' || c > '9') return bad_bits;
        n = n * 10 + (c - '0');
    }
    if (n > max_bits) return head + "prefix length out of range";
    return "";
}

std::string trim(const std::string& s) {
    std::size_t b = s.find_first_not_of(" \t\r\n\v\f");
    if (b == std::string::npos) return "";
    std::size_t e = s.find_last_not_of(" \t\r\n\v\f");
    return s.substr(b, e - b + 1);
}

// --- Go's checks, in Go's order ----------------------------------------------------------------
result<void> check_required_and_enumerated(const config& c, const value_positions& at) {
    if (c.dns.enabled && c.dns.proxy_ip.empty()) return at.fail_at("dns.proxy_ip", "dns.proxy_ip is required");
    if (c.tls.mode != "mitm" && c.tls.mode != "sni-only") {
        return at.fail_at("tls.mode", "tls.mode must be \"mitm\" or \"sni-only\"; got " + go_quote(c.tls.mode));
    }
    if (c.tls.mode == "mitm") {
        if (c.tls.ca_cert.empty()) return at.fail_at("tls.ca_cert", "tls.ca_cert is required");
        if (c.tls.ca_key.empty()) return at.fail_at("tls.ca_key", "tls.ca_key is required");
    }
    const std::string& lvl = c.log.level;
    if (lvl != "debug" && lvl != "info" && lvl != "warn" && lvl != "error") {
        return at.fail_at("log.level", "log.level: unknown log level: " + go_quote(lvl));
    }
    return ok();
}

result<void> check_positive(const value_positions& at, const std::string& path, duration d) {
    if (d > duration(0)) return ok();
    return at.fail_at(path, path + " must be positive; got " + format_go_duration(d));
}

// Entries are stored trimmed, as the Go proxy keeps them.
result<void> check_and_trim_deny_cidrs(std::vector<std::string>& cidrs, const value_positions& at) {
    for (std::size_t i = 0; i < cidrs.size(); ++i) {
        std::string path = "proxy.upstream_deny_cidrs[" + std::to_string(i) + "]";
        std::string entry = trim(cidrs[i]);
        if (entry.empty()) return at.fail_at(path, path + ": empty CIDR entry");
        std::string why = check_cidr(entry);
        if (!why.empty()) return at.fail_at(path, path + ": invalid CIDR " + go_quote(entry) + ": " + why);
        cidrs[i] = entry;
    }
    return ok();
}

// The key must name a variable that is set: the management API never runs without a key.
result<void> check_management_key(const management_config& m, const value_positions& at) {
    if (m.listen.empty()) return ok();
    std::string where = at.has("management.api_key_env") ? "management.api_key_env" : "management.listen";
    if (m.api_key_env.empty()) {
        return at.fail_at(where, "management.api_key_env is required when management.listen is set");
    }
    if (!env_is_set(m.api_key_env)) {
        return at.fail_at(where,
                          "management.api_key_env " + go_quote(m.api_key_env) + " is not set in the environment");
    }
    return ok();
}

// An error about a record's field points at the field when the file has it, else at the record.
result<void> check_dns_records(const std::vector<dns_record>& records, const value_positions& at) {
    for (std::size_t i = 0; i < records.size(); ++i) {
        const auto& r = records[i];
        std::string path = "dns.records[" + std::to_string(i) + "]";
        auto field_or_record = [&](const char* f) {
            std::string fp = path + "." + f;
            return at.has(fp) ? fp : path;
        };
        if (r.name.empty()) return at.fail_at(field_or_record("name"), path + ".name is required");
        if (r.type != "A" && r.type != "AAAA" && r.type != "CNAME") {
            return at.fail_at(field_or_record("type"),
                              path + ".type must be A, AAAA or CNAME; got " + go_quote(r.type));
        }
        if (r.value.empty()) return at.fail_at(field_or_record("value"), path + ".value is required");
    }
    return ok();
}

// The DNS server's own start-up check (Go makes it there, with this message), made here so that it
// names the position and -check reports it.
result<void> check_dns_proxy_ip(const dns_config& d, const value_positions& at) {
    unsigned char v4[4];
    if (!d.enabled || inet_pton(AF_INET, d.proxy_ip.c_str(), v4) == 1) return ok();
    return at.fail_at("dns.proxy_ip", "dns.proxy_ip: invalid proxy_ip (must be IPv4): " + go_quote(d.proxy_ip));
}

// --- Extensions: Go leaves these unchecked; nonsense values fail here instead ---------------------
result<void> check_proxy_extensions(const proxy_config& p, const value_positions& at) {
    if (p.oversize_body != "reject" && p.oversize_body != "forward") {
        return at.fail_at("proxy.oversize_body",
                          "proxy.oversize_body must be \"reject\" or \"forward\"; got " + go_quote(p.oversize_body));
    }
    if (p.deny_body != "empty" && p.deny_body != "reason") {
        return at.fail_at("proxy.deny_body",
                          "proxy.deny_body must be \"empty\" or \"reason\"; got " + go_quote(p.deny_body));
    }
    for (std::size_t i = 0; i < p.upstream_h2c.size(); ++i) {
        const std::string path = "proxy.upstream_h2c[" + std::to_string(i) + "]";
        if (!core::valid_glob(core::normalize_host(p.upstream_h2c[i])))
            return at.fail_at(path, path + ": invalid glob " + go_quote(p.upstream_h2c[i]));
    }
    for (auto [path, value] : {std::pair{"proxy.client_handshake_timeout", p.client_handshake_timeout},
                               std::pair{"proxy.client_header_timeout", p.client_header_timeout},
                               std::pair{"proxy.client_idle_timeout", p.client_idle_timeout},
                               std::pair{"proxy.upstream_connect_timeout", p.upstream_connect_timeout},
                               std::pair{"proxy.upstream_idle_timeout", p.upstream_idle_timeout},
                               std::pair{"proxy.shutdown_timeout", p.shutdown_timeout}}) {
        if (auto r = check_positive(at, path, value); !r) return r;
    }
    return ok();
}

result<void> check_tls_numbers(const tls_config& t, const value_positions& at) {
    if (t.cert_cache_size < 0) {
        return at.fail_at("tls.cert_cache_size",
                          "tls.cert_cache_size must not be negative; got " + std::to_string(t.cert_cache_size));
    }
    int hours = t.leaf_cert_expiry_hours;
    if (hours < 0 || hours > k_max_leaf_expiry_hours) {
        return at.fail_at("tls.leaf_cert_expiry_hours",
                          "tls.leaf_cert_expiry_hours must be between 0 (default 72) and " +
                              std::to_string(k_max_leaf_expiry_hours) + "; got " + std::to_string(hours));
    }
    return ok();
}

}  // namespace

result<std::vector<std::string>> parse_deny_cidrs_list(const std::string& list) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = list.find(',', start);
        std::string entry = trim(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (entry.empty()) return make_error("empty CIDR entry");
        std::string why = check_cidr(entry);
        if (!why.empty()) return make_error("invalid CIDR " + go_quote(entry) + ": " + why);
        out.push_back(std::move(entry));
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

error value_positions::fail_at(const std::string& path, const std::string& msg) const {
    auto it = at_.find(path);
    if (it == at_.end() || it->second.line == 0) return make_error(file_ + ": " + msg);
    return make_error(file_ + ":" + std::to_string(it->second.line) + ":" + std::to_string(it->second.column) + ": " +
                      msg);
}

// The Go checks in Go's order, then ours; the first failure is the one reported, as in Go.
result<void> validate(config& cfg, const value_positions& at) {
    const proxy_config& p = cfg.proxy;
    result<void> r = check_required_and_enumerated(cfg, at);
    if (r) r = check_positive(at, "proxy.upstream_response_header_timeout", p.upstream_response_header_timeout);
    if (r) r = check_positive(at, "control_plane.poll_interval", cfg.control_plane.poll_interval);
    if (r) r = check_and_trim_deny_cidrs(cfg.proxy.upstream_deny_cidrs, at);
    if (r) r = check_management_key(cfg.management, at);
    if (r) r = check_dns_records(cfg.dns.records, at);
    if (r) r = check_dns_proxy_ip(cfg.dns, at);
    if (r) r = check_proxy_extensions(p, at);
    if (r) r = check_tls_numbers(cfg.tls, at);
    return r;
}

}  // namespace iron::config
