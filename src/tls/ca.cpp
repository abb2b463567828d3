// The operator's CA: loading/validating it and `generate-ca`.
#include "tls/ca.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

namespace iron::tls {

std::string openssl_error_string() {
    std::string out;
    char buf[256];
    while (unsigned long code = ERR_get_error()) {
        ERR_error_string_n(code, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

const EVP_MD* signing_digest(EVP_PKEY* key) {
    const int id = EVP_PKEY_get_id(key);
    return (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
}

bool add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
    if (!ext) return false;
    const bool added = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return added;
}

bool set_random_serial(X509* cert) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return false;
    raw[0] |= 0x01;  // never zero
    std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(raw, sizeof raw, nullptr), &BN_free);
    return bn && BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr;
}

namespace {

struct bio_deleter { void operator()(BIO* p) const { BIO_free_all(p); } };
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
struct basic_constraints_deleter { void operator()(BASIC_CONSTRAINTS* p) const { BASIC_CONSTRAINTS_free(p); } };
struct fd_closer {
    int fd = -1;
    ~fd_closer() { if (fd >= 0) ::close(fd); }
};

// Reads a whole file; the error text is `reading <path>: <strerror>` like the Go proxy's.
result<std::string> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return make_error("reading " + path + ": " + std::strerror(errno));
    std::string data;
    char buf[8192];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
    const bool failed = std::ferror(f);
    const int saved = errno;
    std::fclose(f);
    if (failed) return make_error("reading " + path + ": " + std::strerror(saved));
    return data;
}

bio_ptr memory_bio(const std::string& data) {
    return bio_ptr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// PEM pass-phrase callback that refuses: an encrypted CA key is a config error, and OpenSSL's
// default callback would otherwise prompt on the terminal of a daemon.
int no_passphrase(char*, int, int, void*) { return -1; }

bool is_ca(X509* cert) {
    // Only the BasicConstraints cA flag counts (as Go's IsCA); X509_check_ca would also accept
    // v1 self-signed certificates and keyCertSign-only certificates.
    int crit = 0;
    std::unique_ptr<BASIC_CONSTRAINTS, basic_constraints_deleter> bc(
        static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr)));
    return bc && bc->ca;
}

bool has_key_cert_sign(X509* cert) {
    // X509_get_key_usage reports "all usages" when the extension is absent; Go treats an absent
    // KeyUsage as none, so require the extension to be present.
    const uint32_t flags = X509_get_extension_flags(cert);
    if (!(flags & EXFLAG_KUSAGE)) return false;
    return (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) != 0;
}

}  // namespace

result<std::shared_ptr<const certificate_authority>> certificate_authority::load(const std::string& cert_path,
                                                                                 const std::string& key_path) {
    ERR_clear_error();
    auto cert_pem = read_file(cert_path);
    if (!cert_pem) return cert_pem.err();
    auto key_pem = read_file(key_path);
    if (!key_pem) return key_pem.err();

    auto cert_bio = memory_bio(*cert_pem);
    if (!cert_bio) return make_error(cert_path + ": " + openssl_error_string());
    x509_ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
    if (!cert) return make_error(cert_path + ": parsing CA certificate: " + openssl_error_string());
    if (!is_ca(cert.get()))
        return make_error(cert_path + ": certificate is not a CA (BasicConstraints.IsCA is false)");
    if (!has_key_cert_sign(cert.get())) return make_error(cert_path + ": CA certificate missing KeyUsageCertSign");

    // PEM_read_bio_PrivateKey decodes "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" (PKCS#1) and
    // "EC PRIVATE KEY" (SEC1) alike, which covers all three formats the Go proxy tries.
    auto key_bio = memory_bio(*key_pem);
    if (!key_bio) return make_error(key_path + ": " + openssl_error_string());
    pkey_ptr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
    if (!key)
        return make_error(key_path + ": parsing CA key (tried PKCS8, PKCS1, and EC formats): " +
                          openssl_error_string());
    // Not checked by the Go proxy: a mismatched pair only shows up later as leaves no client
    // accepts, so fail at start-up instead.
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        return make_error(key_path + ": CA key does not match CA certificate");
    }
    ERR_clear_error();
    return std::shared_ptr<const certificate_authority>(
        std::make_shared<certificate_authority>(std::move(cert), std::move(key)));
}

namespace {

result<pkey_ptr> generate_key(const std::string& alg) {
    EVP_PKEY* key = nullptr;
    if (alg == "ecdsa-p256") key = EVP_EC_gen("P-256");
    else if (alg == "rsa4096") key = EVP_RSA_gen(4096);
    else if (alg == "rsa2048") key = EVP_RSA_gen(2048);
    else if (alg == "ed25519") key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    else return make_error("unsupported algorithm \"" + alg + "\" (use ecdsa-p256, rsa4096, rsa2048 or ed25519)");
    if (!key) return make_error("generating " + alg + " key: " + openssl_error_string());
    return pkey_ptr(key);
}

// mkdir -p with mode 0755 for every directory it creates (subject to the umask, as Go's MkdirAll).
result<void> make_dirs(const std::string& dir) {
    if (dir.empty()) return ok();
    std::string prefix;
    std::filesystem::path p(dir);
    for (const auto& part : p) {
        prefix = prefix.empty() ? part.string() : (std::filesystem::path(prefix) / part).string();
        if (part == "/" || part.empty()) continue;
        if (::mkdir(prefix.c_str(), 0755) == 0) continue;
        const int e = errno;
        struct stat st{};
        if (e == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        return make_error("creating " + prefix + ": " + std::strerror(e == EEXIST ? ENOTDIR : e));
    }
    return ok();
}

result<x509_ptr> make_ca_cert(EVP_PKEY* key, const generate_ca_options& opts) {
    x509_ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), 2) != 1) return make_error("creating CA certificate: " + openssl_error_string());

    if (!set_random_serial(cert.get())) return make_error("setting serial: " + openssl_error_string());

    // NotBefore one minute back tolerates clients whose clocks run slightly behind.
    if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(opts.expiry_hours) * 3600L))
        return make_error("setting validity: " + openssl_error_string());

    X509_NAME* name = X509_get_subject_name(cert.get());
    if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(opts.name.data()),
                                   static_cast<int>(opts.name.size()), -1, 0) != 1 ||
        X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key) != 1)
        return make_error("setting CA name/key: " + openssl_error_string());

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    // The SubjectKeyIdentifier goes in before the AuthorityKeyIdentifier, which copies it
    // from the issuer (this same certificate).
    if (!add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !add_ext(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"))
        return make_error("adding CA extensions: " + openssl_error_string());

    if (X509_sign(cert.get(), key, signing_digest(key)) <= 0) return make_error("signing CA certificate: " + openssl_error_string());
    return cert;
}

result<std::string> to_pem(const std::function<int(BIO*)>& write) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || write(bio.get()) != 1) return make_error("encoding PEM: " + openssl_error_string());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

bool write_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

result<generated_ca> generate_ca(const generate_ca_options& opts) {
    ERR_clear_error();
    // Options are validated before anything touches the disk. A non-positive lifetime would
    // yield a certificate that expires before it starts (Go does not check).
    if (opts.expiry_hours <= 0)
        return make_error("-expiry-hours must be positive, got " + std::to_string(opts.expiry_hours));
    auto key = generate_key(opts.alg);
    if (!key) return key.err();
    if (auto made = make_dirs(opts.outdir); !made) return made.err();

    auto cert = make_ca_cert(key->get(), opts);
    if (!cert) return cert.err();
    EVP_PKEY* k = key->get();
    X509* c = cert->get();
    auto key_pem = to_pem([k](BIO* b) { return PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr); });
    if (!key_pem) return key_pem.err();
    auto cert_pem = to_pem([c](BIO* b) { return PEM_write_bio_X509(b, c); });
    if (!cert_pem) return cert_pem.err();

    generated_ca out;
    const std::filesystem::path dir(opts.outdir.empty() ? "." : opts.outdir);
    out.cert_path = (dir / "ca.crt").string();
    out.key_path = (dir / "ca.key").string();

    // Both files are claimed (O_EXCL) before either is written, so an existing file leaves
    // everything as it was. The key is created 0600 so it is never readable by others, not
    // even between open and chmod.
    fd_closer key_fd{::open(out.key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (key_fd.fd < 0) return make_error("creating " + out.key_path + ": " + std::strerror(errno));
    fd_closer cert_fd{::open(out.cert_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
    if (cert_fd.fd < 0) {
        const int e = errno;
        ::unlink(out.key_path.c_str());
        return make_error("creating " + out.cert_path + ": " + std::strerror(e));
    }
    // The umask may have narrowed the certificate's mode; it is public, so make it 0644 exactly.
    const bool written = ::fchmod(cert_fd.fd, 0644) == 0 && write_all(key_fd.fd, *key_pem) &&
                         write_all(cert_fd.fd, *cert_pem) && ::fsync(key_fd.fd) == 0 && ::fsync(cert_fd.fd) == 0;
    if (!written) {
        const int e = errno;
        ::unlink(out.key_path.c_str());
        ::unlink(out.cert_path.c_str());
        return make_error("writing " + out.key_path + " / " + out.cert_path + ": " + std::strerror(e));
    }
    return out;
}

}  // namespace iron::tls
