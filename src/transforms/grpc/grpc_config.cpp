// grpc_transform::from_config: the `grpc` config block, parsed strictly, with the Go proxy's
// messages for what it checks ("grpc transform: name is required", …). Certificate files are read
// and checked here, at build time, so a bad file fails -check and a reload rather than the first
// request.
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/yaml_util.hpp"
#include "transforms/grpc/grpc_transform.hpp"

namespace iron::transforms::grpcsvc {
namespace {

result<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error("open " + path + ": no such file or unreadable");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// How many PEM certificates `pem` holds (0 when none parses).
int count_certificates(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (bio == nullptr) return 0;
    int n = 0;
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        X509_free(cert);
        ++n;
    }
    BIO_free(bio);
    return n;
}

bool holds_private_key(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (bio == nullptr) return false;
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (key == nullptr) return false;
    EVP_PKEY_free(key);
    return true;
}

// tls: {enabled, ca_cert, cert, key}; the files are read now (their contents go to gRPC).
result<void> read_tls(const YAML::Node& config, const config::yaml_ctx& ctx, const std::string& who, channel_tls& tls) {
    const YAML::Node t = config["tls"];
    if (config::is_absent(t)) return ok();
    const auto tctx = ctx.child("tls");
    if (auto r = config::expect_map(t, tctx, {"enabled", "ca_cert", "cert", "key"}); !r) return r;
    std::string ca, cert, key;
    if (auto r = config::read_optional_bool(t, "enabled", tctx, tls.enabled); !r) return r;
    if (auto r = config::read_optional_string(t, "ca_cert", tctx, ca); !r) return r;
    if (auto r = config::read_optional_string(t, "cert", tctx, cert); !r) return r;
    if (auto r = config::read_optional_string(t, "key", tctx, key); !r) return r;
    if (!tls.enabled) return ok();  // the Go proxy ignores the files when TLS is off
    if (!ca.empty()) {
        auto pem = read_file(ca);
        if (!pem) return tctx.fail(t["ca_cert"], who + "reading ca_cert: " + pem.message());
        if (count_certificates(*pem) == 0) return tctx.fail(t["ca_cert"], who + "ca_cert contains no valid certificates");
        tls.ca_pem = std::move(*pem);
    }
    if (cert.empty() != key.empty()) return tctx.fail(t, who + "both cert and key are required for mTLS");
    if (cert.empty()) return ok();
    auto cert_pem = read_file(cert);
    if (!cert_pem) return tctx.fail(t["cert"], who + "loading client cert: " + cert_pem.message());
    if (count_certificates(*cert_pem) == 0) return tctx.fail(t["cert"], who + "loading client cert: no certificate in " + cert);
    auto key_pem = read_file(key);
    if (!key_pem) return tctx.fail(t["key"], who + "loading client key: " + key_pem.message());
    if (!holds_private_key(*key_pem)) return tctx.fail(t["key"], who + "loading client key: no private key in " + key);
    tls.cert_pem = std::move(*cert_pem);
    tls.key_pem = std::move(*key_pem);
    return ok();
}

result<void> read_timeout(const YAML::Node& config, const config::yaml_ctx& ctx, const std::string& who,
                          grpc_settings& s) {
    const YAML::Node n = config["timeout"];
    if (config::is_absent(n)) return ok();
    auto v = config::get_duration(n, ctx.child("timeout"));
    if (!v) return v.err();
    if (v->count() <= 0) return ctx.fail(n, who + "timeout must be positive");
    s.timeout = *v;
    return ok();
}

result<void> read_failure_mode(const YAML::Node& config, const config::yaml_ctx& ctx, const std::string& who,
                               grpc_settings& s) {
    std::string mode;
    if (auto r = config::read_optional_string(config, "failure_mode", ctx, mode); !r) return r;
    if (mode.empty() || mode == "deny") s.on_failure = failure_mode::deny;
    else if (mode == "allow") s.on_failure = failure_mode::allow;
    else
        return ctx.fail(config["failure_mode"],
                        who + "invalid failure_mode " + config::go_quote(mode) + ": must be \"deny\" or \"allow\"");
    return ok();
}

}  // namespace

result<std::unique_ptr<grpc_transform>> grpc_transform::from_config(const YAML::Node& config,
                                                                    const config::yaml_ctx& ctx) {
    if (config::is_absent(config)) return ctx.fail(config, "grpc transform: name is required");
    if (auto r = config::expect_map(config, ctx, {"name", "target", "tls", "send_request_body", "send_response_body",
                                                  "rules", "timeout", "failure_mode"});
        !r)
        return r.err();
    grpc_settings s;
    if (auto r = config::read_optional_string(config, "name", ctx, s.name); !r) return r.err();
    if (s.name.empty()) return ctx.fail(config, "grpc transform: name is required");
    const std::string who = "grpc transform " + config::go_quote(s.name) + ": ";
    if (auto r = config::read_optional_string(config, "target", ctx, s.target); !r) return r.err();
    if (s.target.empty()) return ctx.fail(config, who + "target is required");
    if (auto r = read_tls(config, ctx, who, s.tls); !r) return r.err();
    if (auto r = config::read_optional_bool(config, "send_request_body", ctx, s.send_request_body); !r) return r.err();
    if (auto r = config::read_optional_bool(config, "send_response_body", ctx, s.send_response_body); !r) return r.err();
    if (auto r = read_timeout(config, ctx, who, s); !r) return r.err();
    if (auto r = read_failure_mode(config, ctx, who, s); !r) return r.err();
    auto rules = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    return std::make_unique<grpc_transform>(std::move(s), std::move(*rules));
}

}  // namespace iron::transforms::grpcsvc
