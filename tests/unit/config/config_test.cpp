// The config loader: schema, defaults, env overrides, strictness and validation messages (Go's).
#include "config/config.hpp"
#include "config/yaml_util.hpp"
#include "core/cidr.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

namespace iron::config {
namespace {

using std::chrono::seconds;

// Every variable the loader reads; cleared for each test so the host environment cannot leak in.
const char* const k_env_vars[] = {
    "IRON_DNS_ENABLED", "IRON_DNS_LISTEN", "IRON_DNS_PROXY_IP", "IRON_DNS_UPSTREAM_RESOLVER",
    "IRON_PROXY_HTTP_LISTEN", "IRON_PROXY_HTTPS_LISTEN", "IRON_PROXY_TUNNEL_LISTEN",
    "IRON_PROXY_MAX_REQUEST_BODY_BYTES", "IRON_PROXY_MAX_RESPONSE_BODY_BYTES",
    "IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT", "IRON_TLS_MODE", "IRON_TLS_CA_CERT", "IRON_TLS_CA_KEY",
    "IRON_TLS_CERT_CACHE_SIZE", "IRON_TLS_LEAF_CERT_EXPIRY_HOURS", "IRON_METRICS_LISTEN",
    "IRON_MANAGEMENT_LISTEN", "IRON_LOG_LEVEL", "IRON_CONTROL_PLANE_POLL_INTERVAL", "IRON_MANAGEMENT_API_KEY",
    "IRON_TEST_MGMT_KEY", "IRON_PROXY_UPSTREAM_DENY_CIDRS", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
};

// DNS off and a CA: the smallest config that validates.
const char* const k_minimal = "dns:\n  enabled: false\ntls:\n  ca_cert: /ca.crt\n  ca_key: /ca.key\n";

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/iron-config-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        for (const char* name : k_env_vars) {
            const char* v = std::getenv(name);
            saved_env_[name] = v ? std::optional<std::string>(v) : std::nullopt;
            unsetenv(name);
        }
    }
    void TearDown() override {
        for (const auto& [name, v] : saved_env_) {
            if (v) setenv(name.c_str(), v->c_str(), 1);
            else unsetenv(name.c_str());
        }
        for (const auto& f : files_) std::remove(f.c_str());
        rmdir(dir_.c_str());
    }

    std::string write(const std::string& name, const std::string& text) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path, std::ios::binary) << text;
        files_.push_back(path);
        return path;
    }
    // Writes cfg.yaml and loads it; path_ is the file name that prefixes messages.
    result<config> load(const std::string& text) {
        path_ = write("cfg.yaml", text);
        return load_file(path_);
    }
    config load_ok(const std::string& text) {
        auto r = load(text);
        EXPECT_TRUE(r) << r.message();
        return r ? *r : config{};
    }
    // The message must be exactly `message` (for errors that name no file, e.g. env variables).
    void expect_raw_error(const std::string& text, const std::string& message) {
        auto r = load(text);
        ASSERT_FALSE(r) << "loaded although an error was expected: " << message;
        EXPECT_EQ(r.message(), message);
    }
    // The message must be exactly "<path_><suffix>".
    void expect_error(const std::string& text, const std::string& suffix) {
        auto r = load(text);
        ASSERT_FALSE(r) << "loaded although an error was expected: " << suffix;
        EXPECT_EQ(r.message(), path_ + suffix);
    }

    std::string dir_, path_;
    std::vector<std::string> files_;
    std::map<std::string, std::optional<std::string>> saved_env_;
};

bool contains(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v) {
        if (s.find(needle) != std::string::npos) return true;
    }
    return false;
}

TEST_F(ConfigTest, DefaultsWhenKeysAreAbsent) {
    config c = load_ok(k_minimal);
    EXPECT_EQ(c.source, path_);
    EXPECT_FALSE(c.dns.enabled);
    EXPECT_EQ(c.dns.listen, "");  // no :53 default when DNS is off
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{":80"}));
    EXPECT_EQ(c.proxy.https_listen, ":443");
    EXPECT_EQ(c.proxy.tunnel_listen, "");
    EXPECT_EQ(c.proxy.max_request_body_bytes, 1048576);
    EXPECT_EQ(c.proxy.max_response_body_bytes, 0);
    EXPECT_EQ(c.proxy.upstream_response_header_timeout, seconds(30));
    EXPECT_EQ(c.proxy.upstream_deny_cidrs,
              (std::vector<std::string>{"169.254.169.254/32", "fd00:ec2::254/128", "fd20:ce::254/128", "127.0.0.0/8",
                                        "::1/128", "0.0.0.0/8", "::/128"}));
    EXPECT_EQ(c.proxy.client_handshake_timeout, seconds(10));
    EXPECT_EQ(c.proxy.client_header_timeout, seconds(30));
    EXPECT_EQ(c.proxy.client_idle_timeout, seconds(120));
    EXPECT_EQ(c.proxy.upstream_connect_timeout, seconds(30));
    EXPECT_EQ(c.proxy.upstream_idle_timeout, seconds(90));
    EXPECT_EQ(c.proxy.shutdown_timeout, seconds(10));
    EXPECT_EQ(c.tls.mode, "mitm");
    EXPECT_EQ(c.tls.cert_cache_size, 1000);
    EXPECT_EQ(c.tls.leaf_cert_expiry_hours, 72);
    EXPECT_EQ(c.metrics.listen, ":9090");
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.log.audit_path, "");
    EXPECT_EQ(c.control_plane.poll_interval, seconds(10));
    EXPECT_EQ(c.management.listen, "");
    EXPECT_EQ(c.management.api_key_env, "");
    EXPECT_TRUE(c.transforms.empty());
    EXPECT_TRUE(c.not_yet_supported.empty());
}

TEST_F(ConfigTest, DnsEnabledByDefaultGetsListenDefault) {
    config c = load_ok("dns:\n  proxy_ip: 10.0.0.1\ntls:\n  ca_cert: a\n  ca_key: b\n");
    EXPECT_TRUE(c.dns.enabled);
    EXPECT_EQ(c.dns.listen, ":53");
    EXPECT_FALSE(contains(c.not_yet_supported, "dns"));  // the DNS server is implemented
}

TEST_F(ConfigTest, ZeroMeansDefault) {
    config c = load_ok(std::string(k_minimal) +
                       "proxy:\n  max_request_body_bytes: 0\n  upstream_response_header_timeout: '0'\n"
                       "  max_response_body_bytes: -1\n");
    EXPECT_EQ(c.proxy.max_request_body_bytes, 1048576);
    EXPECT_EQ(c.proxy.upstream_response_header_timeout, seconds(30));
    EXPECT_EQ(c.proxy.max_response_body_bytes, -1);  // negative = unlimited, accepted
}

TEST_F(ConfigTest, EveryFieldOverridesItsDefault) {
    setenv("IRON_TEST_MGMT_KEY", "secret", 1);
    config c = load_ok(R"(
dns:
  enabled: true
  listen: "127.0.0.1:5353"
  proxy_ip: 10.0.0.2
  upstream_resolver: 8.8.8.8:53
  passthrough: ["*.internal", corp.example]
  records:
    - {name: a.test, type: A, value: 10.1.1.1}
    - {name: b.test, type: CNAME, value: a.test}
    - {name: c.test, type: AAAA, value: "::1"}
proxy:
  http_listen: ":8080"
  https_listen: ":8443"
  tunnel_listen: ":1080"
  max_request_body_bytes: 2048
  max_response_body_bytes: 4096
  upstream_response_header_timeout: 5m
  upstream_deny_cidrs: ["10.0.0.0/8", " 192.168.0.0/16 "]
  upstream_proxy:
    http_proxy: http://up:3128
    https_proxy: http://up:3129
    no_proxy: localhost,.corp
  upstream_ca_file: /etc/extra.pem
  client_handshake_timeout: 1s
  client_header_timeout: 2s
  client_idle_timeout: 3s
  upstream_connect_timeout: 4s
  upstream_idle_timeout: 500ms
  shutdown_timeout: 2m
tls:
  mode: mitm
  ca_cert: /x/ca.crt
  ca_key: /x/ca.key
  cert_cache_size: 50
  leaf_cert_expiry_hours: 24
metrics:
  listen: ":9191"
management:
  listen: ":9999"
  api_key_env: IRON_TEST_MGMT_KEY
control_plane:
  poll_interval: 1m
log:
  level: debug
  audit_path: /var/log/audit.jsonl
)");
    EXPECT_TRUE(c.dns.enabled);
    EXPECT_EQ(c.dns.listen, "127.0.0.1:5353");
    EXPECT_EQ(c.dns.proxy_ip, "10.0.0.2");
    EXPECT_EQ(c.dns.upstream_resolver, "8.8.8.8:53");
    EXPECT_EQ(c.dns.passthrough, (std::vector<std::string>{"*.internal", "corp.example"}));
    ASSERT_EQ(c.dns.records.size(), 3u);
    EXPECT_EQ(c.dns.records[1].name, "b.test");
    EXPECT_EQ(c.dns.records[1].type, "CNAME");
    EXPECT_EQ(c.dns.records[1].value, "a.test");
    EXPECT_EQ(c.dns.records[2].type, "AAAA");
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{":8080"}));
    EXPECT_EQ(c.proxy.https_listen, ":8443");
    EXPECT_EQ(c.proxy.tunnel_listen, ":1080");
    EXPECT_EQ(c.proxy.max_request_body_bytes, 2048);
    EXPECT_EQ(c.proxy.max_response_body_bytes, 4096);
    EXPECT_EQ(c.proxy.upstream_response_header_timeout, std::chrono::minutes(5));
    EXPECT_EQ(c.proxy.upstream_deny_cidrs, (std::vector<std::string>{"10.0.0.0/8", "192.168.0.0/16"}));
    EXPECT_EQ(c.proxy.upstream_proxy.http_proxy, "http://up:3128");
    EXPECT_EQ(c.proxy.upstream_proxy.https_proxy, "http://up:3129");
    EXPECT_EQ(c.proxy.upstream_proxy.no_proxy, "localhost,.corp");
    EXPECT_EQ(c.proxy.upstream_ca_file, "/etc/extra.pem");
    EXPECT_EQ(c.proxy.client_handshake_timeout, seconds(1));
    EXPECT_EQ(c.proxy.client_header_timeout, seconds(2));
    EXPECT_EQ(c.proxy.client_idle_timeout, seconds(3));
    EXPECT_EQ(c.proxy.upstream_connect_timeout, seconds(4));
    EXPECT_EQ(c.proxy.upstream_idle_timeout, std::chrono::milliseconds(500));
    EXPECT_EQ(c.proxy.shutdown_timeout, std::chrono::minutes(2));
    EXPECT_EQ(c.tls.ca_cert, "/x/ca.crt");
    EXPECT_EQ(c.tls.ca_key, "/x/ca.key");
    EXPECT_EQ(c.tls.cert_cache_size, 50);
    EXPECT_EQ(c.tls.leaf_cert_expiry_hours, 24);
    EXPECT_EQ(c.metrics.listen, ":9191");
    EXPECT_EQ(c.management.listen, ":9999");
    EXPECT_EQ(c.management.api_key_env, "IRON_TEST_MGMT_KEY");
    EXPECT_EQ(c.control_plane.poll_interval, std::chrono::minutes(1));
    EXPECT_EQ(c.log.level, "debug");
    EXPECT_EQ(c.log.audit_path, "/var/log/audit.jsonl");
    // Upstream proxy chaining is implemented: nothing about it is "not yet supported".
    EXPECT_TRUE(contains(c.not_yet_supported, "control_plane (managed mode)"));
    EXPECT_FALSE(contains(c.not_yet_supported, "upstream_proxy"));
    // Implemented: the metrics server and the management API.
    EXPECT_FALSE(contains(c.not_yet_supported, "metrics.listen"));
    EXPECT_FALSE(contains(c.not_yet_supported, "management.listen"));
}

TEST_F(ConfigTest, HttpListenAndHttpListensMerge) {
    config c = load_ok(std::string(k_minimal) +
                       "proxy:\n  http_listens: [':81', ':80', ':82']\n  http_listen: ':80'\n");
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{":80", ":81", ":82"}));
    c = load_ok(std::string(k_minimal) + "proxy:\n  http_listens: [':81']\n");
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{":81"}));
    setenv("IRON_PROXY_HTTP_LISTEN", "127.0.0.1:1", 1);
    c = load_ok(std::string(k_minimal) + "proxy:\n  http_listens: [':81']\n  http_listen: ':80'\n");
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{"127.0.0.1:1"}));
}

TEST_F(ConfigTest, UnknownKeysAreRejectedEverywhere) {
    expect_error("dns:\n  enabled: false\nproxyy: {}\n",
                 ":3:1: unknown key \"proxyy\" (allowed: dns, proxy, tls, transforms, mcp, mcp_gateway, postgres, "
                 "metrics, management, control_plane, log)");
    expect_error("dns:\n  enabled: false\n  listn: x\n",
                 ":3:3: dns: unknown key \"listn\" (allowed: enabled, listen, proxy_ip, upstream_resolver, "
                 "passthrough, records)");
    auto r = load("proxy:\n  https_listen: x\n  max_body: 1\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message().rfind(path_ + ":3:3: proxy: unknown key \"max_body\" (allowed: http_listen, ", 0), 0u)
        << r.message();
    expect_error("proxy:\n  upstream_proxy:\n    http: x\n",
                 ":3:5: proxy.upstream_proxy: unknown key \"http\" (allowed: http_proxy, https_proxy, no_proxy)");
    expect_error("tls:\n  ca: x\n",
                 ":2:3: tls: unknown key \"ca\" (allowed: mode, ca_cert, ca_key, cert_cache_size, "
                 "leaf_cert_expiry_hours)");
    expect_error("log:\n  lvl: info\n", ":2:3: log: unknown key \"lvl\" (allowed: level, audit_path)");
    expect_error("metrics:\n  port: 1\n", ":2:3: metrics: unknown key \"port\" (allowed: listen)");
    expect_error("management:\n  token: x\n",
                 ":2:3: management: unknown key \"token\" (allowed: listen, api_key_env, state_path)");
    expect_error("control_plane:\n  url: x\n", ":2:3: control_plane: unknown key \"url\" (allowed: poll_interval)");
    expect_error("dns:\n  records:\n    - {name: a, type: A, value: 1.1.1.1, ttl: 5}\n",
                 ":3:42: dns.records[0]: unknown key \"ttl\" (allowed: name, type, value)");
    expect_error("transforms:\n  - name: allowlist\n    domains: [x]\n",
                 ":3:5: transforms[0]: unknown key \"domains\" (allowed: name, config)");
}

TEST_F(ConfigTest, DuplicateKeysReportTheSecondOccurrence) {
    expect_error("dns:\n  enabled: false\ntls:\n  ca_cert: a\ndns:\n  enabled: true\n",
                 ":5:1: duplicate key \"dns\" (first at line 1)");
    expect_error("dns:\n  enabled: false\ntls:\n  ca_cert: a\n  ca_key: b\n  ca_cert: c\n",
                 ":6:3: tls: duplicate key \"ca_cert\" (first at line 4)");
    // Inside a transform config, which is otherwise decoded later by the registry.
    expect_error(std::string(k_minimal) + "transforms:\n  - name: allowlist\n    config:\n      domains: [a]\n"
                                          "      domains: [b]\n",
                 ":10:7: transforms[0].config: duplicate key \"domains\" (first at line 9)");
}

TEST_F(ConfigTest, WrongTypes) {
    expect_error("dns:\n  enabled: maybe\n", ":2:12: dns.enabled: expected a boolean (true or false), got \"maybe\"");
    expect_error("dns: [1]\n", ":1:6: dns: expected a map, got a list");
    expect_error("proxy:\n  https_listen: [a]\n", ":2:17: proxy.https_listen: expected a string, got a list");
    expect_error("proxy:\n  max_request_body_bytes: 1MB\n",
                 ":2:27: proxy.max_request_body_bytes: expected an integer, got \"1MB\"");
    expect_error("tls:\n  cert_cache_size: '10'\n", ":2:20: tls.cert_cache_size: expected an integer, got \"10\"");
    expect_error("tls:\n  leaf_cert_expiry_hours: 99999999999\n",
                 ":2:27: tls.leaf_cert_expiry_hours: integer out of range");
    expect_error("proxy:\n  upstream_deny_cidrs: 10.0.0.0/8\n",
                 ":2:24: proxy.upstream_deny_cidrs: expected a list, got \"10.0.0.0/8\"");
    expect_error("proxy:\n  upstream_response_header_timeout: 30\n",
                 ":2:37: proxy.upstream_response_header_timeout: expected a duration string like \"30s\", got 30");
    expect_error("control_plane:\n  poll_interval: soon\n",
                 ":2:18: control_plane.poll_interval: time: invalid duration \"soon\"");
    expect_error("transforms:\n  name: allowlist\n", ":2:3: transforms: expected a list");
    expect_error("transforms:\n  - allowlist\n", ":2:5: transforms[0]: expected a map, got \"allowlist\"");
    expect_error("mcp: true\n", ":1:6: mcp: expected a map");
    expect_error("- a\n", ":1:1: expected a map, got a list");
}

TEST_F(ConfigTest, DenyCidrsAbsentEmptyNullOrCustom) {
    config c = load_ok(std::string(k_minimal) + "proxy:\n  upstream_deny_cidrs: []\n");
    EXPECT_TRUE(c.proxy.upstream_deny_cidrs.empty());
    c = load_ok(std::string(k_minimal) + "proxy:\n  upstream_deny_cidrs:\n");
    EXPECT_EQ(c.proxy.upstream_deny_cidrs.size(), core::default_upstream_deny_cidrs().size());
    c = load_ok(std::string(k_minimal) + "proxy:\n  upstream_deny_cidrs: ['10.0.0.0/8', 'fe80::/10']\n");
    EXPECT_EQ(c.proxy.upstream_deny_cidrs, (std::vector<std::string>{"10.0.0.0/8", "fe80::/10"}));
}

TEST_F(ConfigTest, BadCidrsNameTheEntry) {
    const std::string head = std::string(k_minimal) + "proxy:\n  upstream_deny_cidrs:\n    - 10.0.0.0/8\n";
    expect_error(head + "    - 1.2.3.4\n",
                 ":9:7: proxy.upstream_deny_cidrs[1]: invalid CIDR \"1.2.3.4\": must be CIDR notation, e.g. "
                 "1.2.3.4/32 or ::1/128");
    expect_error(head + "    - garbage/8\n",
                 ":9:7: proxy.upstream_deny_cidrs[1]: invalid CIDR \"garbage/8\": "
                 "netip.ParsePrefix(\"garbage/8\"): ParseAddr(\"garbage\"): unable to parse IP");
    expect_error(head + "    - '  '\n", ":9:7: proxy.upstream_deny_cidrs[1]: empty CIDR entry");
    expect_error(head + "    -\n", ":10:1: proxy.upstream_deny_cidrs[1]: empty CIDR entry");
    expect_error(head + "    - 10.0.0.0/33\n",
                 ":9:7: proxy.upstream_deny_cidrs[1]: invalid CIDR \"10.0.0.0/33\": "
                 "netip.ParsePrefix(\"10.0.0.0/33\"): prefix length out of range");
    expect_error(head + "    - ::/08\n",
                 ":9:7: proxy.upstream_deny_cidrs[1]: invalid CIDR \"::/08\": "
                 "netip.ParsePrefix(\"::/08\"): bad bits after slash: \"08\"");
    EXPECT_TRUE(load(head + "    - ::/128\n    - 0.0.0.0/0\n"));
}

TEST_F(ConfigTest, DenyCidrsFromTheEnvironmentReplaceTheFile) {
    const std::string yaml = std::string(k_minimal) + "proxy:\n  upstream_deny_cidrs: [garbage, 10.0.0.0/8]\n";
    setenv("IRON_PROXY_UPSTREAM_DENY_CIDRS", " 192.168.0.0/16 ,fd00::/8,169.254.169.254/32", 1);
    config c = load_ok(yaml);  // the file's bad entry is replaced, not validated
    EXPECT_EQ(c.proxy.upstream_deny_cidrs,
              (std::vector<std::string>{"192.168.0.0/16", "fd00::/8", "169.254.169.254/32"}));
    c = load_ok(k_minimal);  // also replaces the defaults
    EXPECT_EQ(c.proxy.upstream_deny_cidrs, (std::vector<std::string>{"192.168.0.0/16", "fd00::/8", "169.254.169.254/32"}));
    for (const char* bad : {"10.0.0.0/8,", "10.0.0.0/8,,fd00::/8", " , ", ",10.0.0.0/8"}) {
        setenv("IRON_PROXY_UPSTREAM_DENY_CIDRS", bad, 1);
        expect_raw_error(k_minimal, "IRON_PROXY_UPSTREAM_DENY_CIDRS: empty CIDR entry");
    }
    setenv("IRON_PROXY_UPSTREAM_DENY_CIDRS", "10.0.0.0/8, 1.2.3.4", 1);
    expect_raw_error(k_minimal, "IRON_PROXY_UPSTREAM_DENY_CIDRS: invalid CIDR \"1.2.3.4\": must be CIDR notation, "
                                "e.g. 1.2.3.4/32 or ::1/128");
    setenv("IRON_PROXY_UPSTREAM_DENY_CIDRS", "10.0.0.0/33", 1);
    expect_raw_error(k_minimal, "IRON_PROXY_UPSTREAM_DENY_CIDRS: invalid CIDR \"10.0.0.0/33\": "
                                "netip.ParsePrefix(\"10.0.0.0/33\"): prefix length out of range");
    setenv("IRON_PROXY_UPSTREAM_DENY_CIDRS", "", 1);  // empty: no override, as for every IRON_* variable
    c = load_ok(k_minimal);
    EXPECT_EQ(c.proxy.upstream_deny_cidrs, core::default_upstream_deny_cidrs());
}

TEST_F(ConfigTest, UpstreamH2cIsAListOfHostGlobs) {
    config c = load_ok(std::string(k_minimal) + "proxy:\n  upstream_h2c: [grpc.internal, '*.svc']\n");
    EXPECT_EQ(c.proxy.upstream_h2c, (std::vector<std::string>{"grpc.internal", "*.svc"}));
    EXPECT_TRUE(load_ok(k_minimal).proxy.upstream_h2c.empty());
    expect_error(std::string(k_minimal) + "proxy:\n  upstream_h2c: ['ok.test', 'exa[mple']\n",
                 ":7:29: proxy.upstream_h2c[1]: invalid glob \"exa[mple\"");
}

TEST_F(ConfigTest, DnsProxyIpMustBeIpv4WhenDnsIsOn) {
    expect_error("tls: {ca_cert: a, ca_key: b}\ndns:\n  proxy_ip: notanip\n",
                 ":3:13: dns.proxy_ip: invalid proxy_ip (must be IPv4): \"notanip\"");
    expect_error("tls: {ca_cert: a, ca_key: b}\ndns:\n  proxy_ip: '::1'\n",
                 ":3:13: dns.proxy_ip: invalid proxy_ip (must be IPv4): \"::1\"");
    EXPECT_TRUE(load("tls: {ca_cert: a, ca_key: b}\ndns:\n  enabled: false\n  proxy_ip: notanip\n"));
}

TEST_F(ConfigTest, ValidationOrderFirstFailureWins) {
    // Everything wrong at once: each fix reveals the next check in Go's order.
    std::string dns = "dns:\n  records: [{name: '', type: A, value: x}]\n";
    std::string tls = "tls:\n  mode: bogus\n";
    std::string log = "log:\n  level: trace\n";
    std::string proxy = "proxy:\n  upstream_response_header_timeout: -5s\n  upstream_deny_cidrs: [1.2.3.4]\n";
    std::string cp = "control_plane:\n  poll_interval: -1m30s\n";
    std::string mgmt = "management:\n  listen: ':9999'\n";
    std::string all = dns + tls + log + proxy + cp + mgmt;
    expect_error(all, ": dns.proxy_ip is required");
    setenv("IRON_DNS_PROXY_IP", "10.0.0.1", 1);
    expect_error(all, ":4:9: tls.mode must be \"mitm\" or \"sni-only\"; got \"bogus\"");
    setenv("IRON_TLS_MODE", "mitm", 1);
    expect_error(all, ": tls.ca_cert is required");
    setenv("IRON_TLS_CA_CERT", "/ca.crt", 1);
    expect_error(all, ": tls.ca_key is required");
    setenv("IRON_TLS_CA_KEY", "/ca.key", 1);
    expect_error(all, ":6:10: log.level: unknown log level: \"trace\"");
    setenv("IRON_LOG_LEVEL", "warn", 1);
    expect_error(all, ":8:37: proxy.upstream_response_header_timeout must be positive; got -5s");
    setenv("IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT", "1s", 1);
    expect_error(all, ":11:18: control_plane.poll_interval must be positive; got -1m30s");
    setenv("IRON_CONTROL_PLANE_POLL_INTERVAL", "1s", 1);
    expect_error(all, ":9:25: proxy.upstream_deny_cidrs[0]: invalid CIDR \"1.2.3.4\": must be CIDR notation, "
                      "e.g. 1.2.3.4/32 or ::1/128");
    all = dns + tls + log + "proxy:\n  upstream_response_header_timeout: -5s\n" + cp + mgmt;
    expect_error(all, ":12:11: management.api_key_env \"IRON_MANAGEMENT_API_KEY\" is not set in the environment");
    setenv("IRON_MANAGEMENT_API_KEY", "k", 1);
    expect_error(all, ":2:20: dns.records[0].name is required");  // the empty value's position
}

TEST_F(ConfigTest, DnsRecordMessages) {
    const std::string head = "tls: {ca_cert: a, ca_key: b}\ndns:\n  proxy_ip: 10.0.0.1\n  records:\n";
    expect_error(head + "    - {type: A, value: 1.1.1.1}\n", ":5:7: dns.records[0].name is required");
    expect_error(head + "    - {name: a, type: MX, value: x}\n",
                 ":5:23: dns.records[0].type must be A, AAAA or CNAME; got \"MX\"");
    expect_error(head + "    - {name: a, type: a, value: x}\n",
                 ":5:23: dns.records[0].type must be A, AAAA or CNAME; got \"a\"");
    expect_error(head + "    - {name: a, type: A}\n    - {name: b, type: A}\n",
                 ":5:7: dns.records[0].value is required");
}

TEST_F(ConfigTest, TlsModes) {
    config c = load_ok("dns: {enabled: false}\ntls:\n  mode: sni-only\n");
    EXPECT_EQ(c.tls.mode, "sni-only");
    EXPECT_FALSE(contains(c.not_yet_supported, "sni-only"));  // implemented
    expect_error("dns: {enabled: false}\ntls:\n  mode: MITM\n",
                 ":3:9: tls.mode must be \"mitm\" or \"sni-only\"; got \"MITM\"");
    expect_error("dns: {enabled: false}\ntls:\n  ca_cert: a\n", ": tls.ca_key is required");
}

TEST_F(ConfigTest, TlsNumbersAreRangeChecked) {
    expect_error(std::string(k_minimal) + "  cert_cache_size: -1\n",
                 ":6:20: tls.cert_cache_size must not be negative; got -1");
    expect_error(std::string(k_minimal) + "  leaf_cert_expiry_hours: 87601\n",
                 ":6:27: tls.leaf_cert_expiry_hours must be between 0 (default 72) and 87600; got 87601");
    setenv("IRON_TLS_LEAF_CERT_EXPIRY_HOURS", "-3", 1);
    expect_error(k_minimal, ": tls.leaf_cert_expiry_hours must be between 0 (default 72) and 87600; got -3");
}

TEST_F(ConfigTest, ExtensionTimeoutsMustBePositive) {
    expect_error(std::string(k_minimal) + "proxy:\n  client_idle_timeout: -1s\n",
                 ":7:24: proxy.client_idle_timeout must be positive; got -1s");
    expect_error(std::string(k_minimal) + "proxy:\n  shutdown_timeout: -500ms\n",
                 ":7:21: proxy.shutdown_timeout must be positive; got -500ms");
    // "0" and "" keep the default, as for the other durations.
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  shutdown_timeout: \"0\"\n").proxy.shutdown_timeout,
              std::chrono::seconds(10));
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  shutdown_timeout: \"\"\n").proxy.shutdown_timeout,
              std::chrono::seconds(10));
}

TEST_F(ConfigTest, ManagementApiKeyEnv) {
    config c = load_ok(std::string(k_minimal) + "management:\n  api_key_env: X\n");
    EXPECT_EQ(c.management.api_key_env, "X");  // listen unset: nothing required
    expect_error(std::string(k_minimal) + "management:\n  listen: ':1'\n  api_key_env: IRON_TEST_MGMT_KEY\n",
                 ":8:16: management.api_key_env \"IRON_TEST_MGMT_KEY\" is not set in the environment");
    setenv("IRON_MANAGEMENT_API_KEY", "k", 1);
    setenv("IRON_MANAGEMENT_LISTEN", "127.0.0.1:7", 1);
    c = load_ok(k_minimal);
    EXPECT_EQ(c.management.listen, "127.0.0.1:7");
    EXPECT_EQ(c.management.api_key_env, "IRON_MANAGEMENT_API_KEY");
}

TEST_F(ConfigTest, EnvOverridesApplyAfterFileBeforeDefaults) {
    setenv("IRON_DNS_ENABLED", "F", 1);
    setenv("IRON_DNS_LISTEN", ":5300", 1);
    setenv("IRON_DNS_UPSTREAM_RESOLVER", "1.1.1.1:53", 1);
    setenv("IRON_PROXY_HTTPS_LISTEN", ":4443", 1);
    setenv("IRON_PROXY_TUNNEL_LISTEN", ":1081", 1);
    setenv("IRON_PROXY_MAX_REQUEST_BODY_BYTES", "0", 1);  // 0 ⇒ default, like in the file
    setenv("IRON_PROXY_MAX_RESPONSE_BODY_BYTES", "-1", 1);
    setenv("IRON_TLS_CA_CERT", "/env/ca.crt", 1);
    setenv("IRON_TLS_CERT_CACHE_SIZE", "5", 1);
    setenv("IRON_METRICS_LISTEN", ":9", 1);
    setenv("IRON_LOG_LEVEL", "error", 1);
    setenv("IRON_TLS_CA_KEY", "", 1);  // empty ⇒ ignored
    setenv("https_proxy", "http://lower:1", 1);
    setenv("HTTPS_PROXY", "http://upper:1", 1);
    setenv("no_proxy", ".corp", 1);
    config c = load_ok("dns:\n  enabled: true\ntls:\n  ca_cert: /file/ca.crt\n  ca_key: /file/ca.key\n"
                       "proxy:\n  https_listen: ':1'\n  max_request_body_bytes: 7\n"
                       "  upstream_proxy: {https_proxy: 'http://file:1', no_proxy: x}\n");
    EXPECT_FALSE(c.dns.enabled);
    EXPECT_EQ(c.dns.listen, ":5300");
    EXPECT_EQ(c.dns.upstream_resolver, "1.1.1.1:53");
    EXPECT_EQ(c.proxy.https_listen, ":4443");
    EXPECT_EQ(c.proxy.tunnel_listen, ":1081");
    EXPECT_EQ(c.proxy.max_request_body_bytes, 1048576);
    EXPECT_EQ(c.proxy.max_response_body_bytes, -1);
    EXPECT_EQ(c.tls.ca_cert, "/env/ca.crt");
    EXPECT_EQ(c.tls.ca_key, "/file/ca.key");
    EXPECT_EQ(c.tls.cert_cache_size, 5);
    EXPECT_EQ(c.metrics.listen, ":9");
    EXPECT_EQ(c.log.level, "error");
    EXPECT_EQ(c.proxy.upstream_proxy.https_proxy, "http://upper:1");
    EXPECT_EQ(c.proxy.upstream_proxy.no_proxy, ".corp");
    EXPECT_FALSE(contains(c.not_yet_supported, "upstream_proxy"));
}

TEST_F(ConfigTest, UnusableUpstreamProxyUrlsFailWithTheirPosition) {
    expect_error(std::string(k_minimal) + "proxy:\n  upstream_proxy:\n    http_proxy: ftp://p:21\n",
                 ":8:17: proxy.upstream_proxy.http_proxy: unsupported proxy scheme \"ftp\" (want http, https, socks5 or socks5h)");
    expect_error(std::string(k_minimal) + "proxy:\n  upstream_proxy:\n    https_proxy: 'socks5://u:hunter2@p:0'\n",
                 ":8:18: proxy.upstream_proxy.https_proxy: invalid proxy port (want 1..65535)");
    setenv("HTTPS_PROXY", "gopher://p:443", 1);
    expect_error(std::string(k_minimal) + "proxy:\n  upstream_proxy:\n    https_proxy: http://ok:3128\n",
                 ": proxy.upstream_proxy.https_proxy (from $HTTPS_PROXY): unsupported proxy scheme \"gopher\" (want "
                 "http, https, socks5 or socks5h)");
}

TEST_F(ConfigTest, UpstreamProxyErrorsNeverRepeatThePassword) {
    setenv("HTTP_PROXY", "gopher://alice:hunter2@p:70", 1);
    auto r = load(std::string(k_minimal) + "proxy:\n  https_listen: ':1'\n");
    ASSERT_FALSE(r);
    EXPECT_NE(r.message().find("(from $HTTP_PROXY)"), std::string::npos) << r.message();
    EXPECT_EQ(r.message().find("hunter2"), std::string::npos) << r.message();
}

TEST_F(ConfigTest, EnvOnlyConfig) {
    setenv("IRON_DNS_ENABLED", "true", 1);
    setenv("IRON_DNS_PROXY_IP", "10.9.9.9", 1);
    setenv("IRON_TLS_MODE", "sni-only", 1);
    setenv("IRON_PROXY_HTTP_LISTEN", ":8081", 1);
    setenv("IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT", "1m", 1);
    setenv("IRON_TLS_LEAF_CERT_EXPIRY_HOURS", "12", 1);
    setenv("IRON_CONTROL_PLANE_POLL_INTERVAL", "2s", 1);
    setenv("http_proxy", "http://p:1", 1);
    config c = load_ok("---\n");  // an empty document is a valid all-defaults config
    EXPECT_TRUE(c.dns.enabled);
    EXPECT_EQ(c.dns.proxy_ip, "10.9.9.9");
    EXPECT_EQ(c.tls.mode, "sni-only");
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{":8081"}));
    EXPECT_EQ(c.proxy.upstream_response_header_timeout, std::chrono::minutes(1));
    EXPECT_EQ(c.tls.leaf_cert_expiry_hours, 12);
    EXPECT_EQ(c.control_plane.poll_interval, seconds(2));
    EXPECT_EQ(c.proxy.upstream_proxy.http_proxy, "http://p:1");
}

TEST_F(ConfigTest, InvalidEnvValues) {
    setenv("IRON_DNS_ENABLED", "yes", 1);
    expect_raw_error(k_minimal, "IRON_DNS_ENABLED: strconv.ParseBool: parsing \"yes\": invalid syntax");
    unsetenv("IRON_DNS_ENABLED");
    setenv("IRON_PROXY_MAX_REQUEST_BODY_BYTES", "1MB", 1);
    expect_raw_error(k_minimal, "IRON_PROXY_MAX_REQUEST_BODY_BYTES: strconv.ParseInt: parsing \"1MB\": invalid syntax");
    setenv("IRON_PROXY_MAX_REQUEST_BODY_BYTES", "99999999999999999999", 1);
    expect_raw_error(k_minimal, "IRON_PROXY_MAX_REQUEST_BODY_BYTES: strconv.ParseInt: parsing "
                            "\"99999999999999999999\": value out of range");
    unsetenv("IRON_PROXY_MAX_REQUEST_BODY_BYTES");
    setenv("IRON_TLS_CERT_CACHE_SIZE", "1_000", 1);
    expect_raw_error(k_minimal, "IRON_TLS_CERT_CACHE_SIZE: strconv.Atoi: parsing \"1_000\": invalid syntax");
    unsetenv("IRON_TLS_CERT_CACHE_SIZE");
    setenv("IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT", "30", 1);
    expect_raw_error(k_minimal, "IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT: time: missing unit in duration \"30\"");
    setenv("IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT", "-1s", 1);
    expect_error(k_minimal, ": proxy.upstream_response_header_timeout must be positive; got -1s");
    unsetenv("IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT");
    setenv("IRON_CONTROL_PLANE_POLL_INTERVAL", "-2s", 1);
    expect_error(k_minimal, ": control_plane.poll_interval must be positive; got -2s");
}

// Env variables are not part of the file, so their errors name the variable instead.
TEST_F(ConfigTest, EnvErrorsHaveNoFilePrefix) {
    setenv("IRON_DNS_ENABLED", "x", 1);
    auto r = load(k_minimal);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "IRON_DNS_ENABLED: strconv.ParseBool: parsing \"x\": invalid syntax");
}

TEST_F(ConfigTest, TransformsKeepNameConfigAndPosition) {
    config c = load_ok(std::string(k_minimal) +
                       "transforms:\n"
                       "  - name: allowlist\n"
                       "    config:\n"
                       "      domains: [a.com, '*.b.com']\n"
                       "      bogus_key: kept-for-the-registry\n"
                       "  - name: annotate\n");
    ASSERT_EQ(c.transforms.size(), 2u);
    EXPECT_EQ(c.transforms[0].name, "allowlist");
    EXPECT_EQ(c.transforms[0].where, path_ + ":7:5");
    ASSERT_TRUE(c.transforms[0].config.node().IsMap());
    EXPECT_EQ(c.transforms[0].config.node()["domains"][1].as<std::string>(), "*.b.com");
    EXPECT_EQ(c.transforms[0].config.node()["bogus_key"].as<std::string>(), "kept-for-the-registry");
    EXPECT_EQ(c.transforms[1].name, "annotate");
    EXPECT_EQ(c.transforms[1].where, path_ + ":11:5");
    EXPECT_TRUE(c.transforms[1].config.node().IsNull());
    expect_error(std::string(k_minimal) + "transforms:\n  - config: {}\n", ":7:5: transforms[0]: name is required");
    expect_error(std::string(k_minimal) + "transforms:\n  - name: ''\n",
                 ":7:11: transforms[0].name: must not be empty");
}

TEST_F(ConfigTest, LaterSectionsAreRecordedNotIgnored) {
    config c = load_ok(std::string(k_minimal) + "mcp:\n  servers: []\npostgres: {listen: ':5432'}\nmcp_gateway: {routes: []}\n");
    // Refused at start-up (they gate traffic), with the position like every other config error.
    EXPECT_TRUE(contains(c.refused_sections, path_ + ":8:11: postgres (Postgres proxy): not yet supported"));
    // The MCP gateway is implemented: kept for mcp/gateway.hpp to decode, not refused.
    EXPECT_FALSE(contains(c.refused_sections, "mcp_gateway"));
    EXPECT_TRUE(c.mcp_gateway.node().IsMap());
    EXPECT_FALSE(contains(c.not_yet_supported, "mcp"));
    // The MCP policy is implemented: kept for mcp/policy.hpp to decode, not refused.
    EXPECT_FALSE(contains(c.refused_sections, "mcp (MCP policy)"));
    EXPECT_TRUE(c.mcp.node().IsMap());
}

TEST_F(ConfigTest, SyntaxErrorsCarryPosition) {
    expect_error("dns:\n  enabled: [false\ntls: {}\n", ":3:4: parsing config: end of sequence flow not found");
    auto r = load("a: b: c\n");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message().rfind(path_ + ":1:", 0), 0u) << r.message();
    EXPECT_NE(r.message().find("parsing config: "), std::string::npos);
}

TEST_F(ConfigTest, EmptyAndMissingFiles) {
    expect_error("", ": parsing config: EOF");
    expect_error("# only a comment\n\n", ": parsing config: EOF");
    expect_error("---\n", ": dns.proxy_ip is required");
    auto r = load_file(dir_ + "/does-not-exist.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), dir_ + "/does-not-exist.yaml: reading config: No such file or directory");
    r = load_file(dir_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), dir_ + ": reading config: is a directory");
}

TEST_F(ConfigTest, OnlyTheFirstDocumentIsRead) {
    config c = load_ok(std::string(k_minimal) + "---\nnot: [valid\n");
    EXPECT_EQ(c.tls.ca_cert, "/ca.crt");
}

TEST_F(ConfigTest, LoadStringUsesTheSourceName) {
    auto r = load_string("log:\n  level: loud\n", "inline.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "inline.yaml: dns.proxy_ip is required");
    r = load_string(std::string(k_minimal) + "log:\n  level: loud\n", "inline.yaml");
    EXPECT_EQ(r.message(), "inline.yaml:7:10: log.level: unknown log level: \"loud\"");
}

TEST_F(ConfigTest, EmbeddedDefaultLoads) {
    auto r = load_string(embedded_default_yaml(), "<embedded default>");
    ASSERT_TRUE(r) << r.message();
    const config& c = *r;
    EXPECT_FALSE(c.dns.enabled);
    EXPECT_EQ(c.proxy.http_listens, (std::vector<std::string>{"127.0.0.1:8080"}));
    EXPECT_EQ(c.proxy.https_listen, "127.0.0.1:8443");
    EXPECT_EQ(c.proxy.tunnel_listen, "127.0.0.1:8888");
    EXPECT_EQ(c.tls.mode, "mitm");
    EXPECT_EQ(c.tls.ca_cert, "${IRON_STATE_DIR}/ca.crt");
    EXPECT_EQ(c.metrics.listen, "127.0.0.1:9090");
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.proxy.upstream_deny_cidrs, core::default_upstream_deny_cidrs());
    ASSERT_EQ(c.transforms.size(), 1u);
    EXPECT_EQ(c.transforms[0].name, "allowlist");
    EXPECT_EQ(c.transforms[0].config.node()["domains"].size(), 2u);
    EXPECT_EQ(c.transforms[0].config.node()["domains"][1].as<std::string>(), "*.example.com");

    auto s = load_string(embedded_default_yaml_for("/var/lib/iron \"x\\y"), "<embedded default>");
    ASSERT_TRUE(s) << s.message();
    EXPECT_EQ(s->tls.ca_cert, "/var/lib/iron \"x\\y/ca.crt");
    EXPECT_EQ(s->tls.ca_key, "/var/lib/iron \"x\\y/ca.key");
}

}  // namespace
}  // namespace iron::config

namespace iron::config {
namespace {

// proxy.oversize_body (extension; Go forwards an oversize body cut short): reject (default) |
// forward, strictly validated.
TEST_F(ConfigTest, OversizeBodyDefaultsToReject) {
    EXPECT_EQ(load_ok(k_minimal).proxy.oversize_body, "reject");
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  oversize_body: \"\"\n").proxy.oversize_body, "reject");
}

TEST_F(ConfigTest, OversizeBodyAcceptsRejectAndForward) {
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  oversize_body: forward\n").proxy.oversize_body, "forward");
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  oversize_body: reject\n").proxy.oversize_body, "reject");
}

TEST_F(ConfigTest, OversizeBodyRejectsOtherValues) {
    expect_error(std::string(k_minimal) + "proxy:\n  oversize_body: truncate\n",
                 ":7:18: proxy.oversize_body must be \"reject\" or \"forward\"; got \"truncate\"");
    expect_error(std::string(k_minimal) + "proxy:\n  oversize_body: [reject]\n",
                 ":7:18: proxy.oversize_body: expected a string, got a list");
}

// proxy.deny_body (extension): empty (default, as Go) | reason, strictly validated.
TEST_F(ConfigTest, DenyBodyDefaultsToEmptyAndAcceptsReason) {
    EXPECT_EQ(load_ok(k_minimal).proxy.deny_body, "empty");
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  deny_body: \"\"\n").proxy.deny_body, "empty");
    EXPECT_EQ(load_ok(std::string(k_minimal) + "proxy:\n  deny_body: reason\n").proxy.deny_body, "reason");
}

TEST_F(ConfigTest, DenyBodyRejectsOtherValues) {
    expect_error(std::string(k_minimal) + "proxy:\n  deny_body: verbose\n",
                 ":7:14: proxy.deny_body must be \"empty\" or \"reason\"; got \"verbose\"");
}

TEST_F(ConfigTest, TransparentFlag) {
    config off = load_ok("dns: {enabled: false}\ntls: {ca_cert: a, ca_key: b}\n");
    EXPECT_FALSE(off.proxy.transparent);
    config on = load_ok("dns: {enabled: false}\nproxy:\n  transparent: true\ntls: {ca_cert: a, ca_key: b}\n");
    EXPECT_TRUE(on.proxy.transparent);
}

}  // namespace
}  // namespace iron::config
