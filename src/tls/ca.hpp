#pragma once
// The operator's CA: loading and validating it, and `generate-ca`.
#include <memory>
#include <string>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/result.hpp"

namespace iron::tls {

struct x509_deleter { void operator()(X509* p) const { X509_free(p); } };
struct pkey_deleter { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

// Drains OpenSSL's thread-local error queue into one "; "-joined line (empty queue => "unknown
// OpenSSL error"). Call it right after the failing OpenSSL call so the text is about that call.
std::string openssl_error_string();

// The digest to sign with `key`: SHA-256, or nullptr for Ed25519/Ed448, which hash internally and
// refuse an explicit digest.
const EVP_MD* signing_digest(EVP_PKEY* key);

// Shared by the CA and leaf builders: one v3 extension from its config-string form, and a random
// positive 128-bit serial (RFC 5280 §4.1.2.2). Both return false on an OpenSSL failure.
bool add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value);
bool set_random_serial(X509* cert);

class certificate_authority {
public:
    // Reads the first PEM block of each file. Errors (Go's messages, prefixed by the path):
    // not a CA (BasicConstraints), missing keyCertSign, unparsable key (PKCS#8, PKCS#1, SEC1),
    // and — better than the Go proxy — a key that does not match the certificate.
    static result<std::shared_ptr<const certificate_authority>> load(const std::string& cert_path,
                                                                     const std::string& key_path);
    X509* cert() const { return cert_.get(); }
    EVP_PKEY* key() const { return key_.get(); }

    certificate_authority(x509_ptr cert, pkey_ptr key) : cert_(std::move(cert)), key_(std::move(key)) {}

private:
    x509_ptr cert_;
    pkey_ptr key_;
};

struct generate_ca_options {
    std::string outdir = ".";
    std::string name = "iron-proxy CA";
    int expiry_hours = 8760;
    std::string alg = "ecdsa-p256";  // "ecdsa-p256" (default), "rsa4096", "rsa2048", "ed25519"
};

// Writes <outdir>/ca.crt (0644) and <outdir>/ca.key (PKCS#8, 0600), created exclusively (an
// existing file is an error, nothing overwritten). Self-signed, random 128-bit serial, NotBefore =
// now-1min, BasicConstraints critical CA:TRUE pathlen 0, KeyUsage critical keyCertSign+cRLSign,
// SubjectKeyIdentifier + AuthorityKeyIdentifier. Errors: unsupported alg, expiry_hours <= 0 (both
// before any file or directory is created), `creating <path>: File exists`. Returns the paths.
struct generated_ca {
    std::string cert_path, key_path;
};
result<generated_ca> generate_ca(const generate_ca_options& opts);

}  // namespace iron::tls
