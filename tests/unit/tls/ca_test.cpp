#include "tls/ca.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace iron::tls {
namespace {

namespace fs = std::filesystem;

using test::temp_dir;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
}

unsigned file_mode(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

struct bio_free { void operator()(BIO* b) const { BIO_free_all(b); } };

std::string pem_of(X509* cert) {
    std::unique_ptr<BIO, bio_free> bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, n);
}

std::string pem_of_key(EVP_PKEY* key, bool traditional = false, const EVP_CIPHER* cipher = nullptr) {
    std::unique_ptr<BIO, bio_free> bio(BIO_new(BIO_s_mem()));
    static char pass[] = "secret";
    if (traditional)
        PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    else
        PEM_write_bio_PrivateKey(bio.get(), key, cipher, cipher ? reinterpret_cast<unsigned char*>(pass) : nullptr,
                                 cipher ? 6 : 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, n);
}

// A self-signed certificate with chosen extensions (nullptr = extension absent), to build the
// invalid CAs that generate_ca never produces.
x509_ptr make_cert(EVP_PKEY* key, const char* basic_constraints, const char* key_usage) {
    x509_ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 42);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_basic_constraints, basic_constraints}, std::pair{NID_key_usage, key_usage}}) {
        if (!value) continue;
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(cert.get(), key, EVP_sha256());
    return cert;
}

std::string common_name(X509* cert) {
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

class generate_ca_alg : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(generate_ca_alg, writes_a_loadable_ca_with_the_expected_fields) {
    const auto& [alg, key_type] = GetParam();
    temp_dir dir;
    generate_ca_options opts;
    opts.outdir = dir.path;
    opts.name = "Test CA " + alg;
    opts.expiry_hours = 48;
    opts.alg = alg;
    auto gen = generate_ca(opts);
    ASSERT_TRUE(gen) << gen.message();
    EXPECT_EQ(gen->cert_path, dir / "ca.crt");
    EXPECT_EQ(gen->key_path, dir / "ca.key");
    EXPECT_EQ(file_mode(gen->key_path), 0600u);
    EXPECT_EQ(file_mode(gen->cert_path), 0644u);
    EXPECT_EQ(slurp(gen->key_path).rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);  // PKCS#8
    EXPECT_EQ(slurp(gen->cert_path).rfind("-----BEGIN CERTIFICATE-----", 0), 0u);

    auto ca = certificate_authority::load(gen->cert_path, gen->key_path);
    ASSERT_TRUE(ca) << ca.message();
    X509* cert = (*ca)->cert();
    EXPECT_EQ(EVP_PKEY_get_id((*ca)->key()), key_type);
    EXPECT_EQ(common_name(cert), opts.name);
    EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)), 0);
    EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert)), 1);
    EXPECT_EQ(X509_get_version(cert), 2);
    EXPECT_EQ(X509_verify(cert, (*ca)->key()), 1);  // self-signed

    // Extensions: BasicConstraints critical CA pathlen 0, KeyUsage critical, SKI == AKI keyid.
    const uint32_t flags = X509_get_extension_flags(cert);
    EXPECT_TRUE(flags & EXFLAG_CA);
    EXPECT_EQ(X509_get_pathlen(cert), 0);
    EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert, X509_get_ext_by_NID(cert, NID_basic_constraints, -1))), 1);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert, X509_get_ext_by_NID(cert, NID_key_usage, -1))), 1);
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert);
    const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert);
    ASSERT_NE(ski, nullptr);
    ASSERT_NE(aki, nullptr);
    EXPECT_EQ(ASN1_OCTET_STRING_cmp(ski, aki), 0);

    // Positive serial of up to 128 bits.
    BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    EXPECT_FALSE(BN_is_negative(serial));
    EXPECT_FALSE(BN_is_zero(serial));
    EXPECT_LE(BN_num_bits(serial), 128);
    BN_free(serial);

    // NotBefore about a minute back, NotAfter expiry_hours ahead.
    const time_t now = std::time(nullptr);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    EXPECT_NEAR(days * 86400 + secs, 48 * 3600 + 60, 5);
    time_t t = now - 55;
    EXPECT_LT(X509_cmp_time(X509_get0_notBefore(cert), &t), 0);
    t = now - 65;
    EXPECT_GT(X509_cmp_time(X509_get0_notBefore(cert), &t), 0);

    const int nid = X509_get_signature_nid(cert);
    if (key_type == EVP_PKEY_ED25519) EXPECT_EQ(nid, NID_ED25519);
    else if (key_type == EVP_PKEY_EC) EXPECT_EQ(nid, NID_ecdsa_with_SHA256);
    else EXPECT_EQ(nid, NID_sha256WithRSAEncryption);
}

INSTANTIATE_TEST_SUITE_P(algs, generate_ca_alg,
                         ::testing::Values(std::pair<std::string, int>{"ecdsa-p256", EVP_PKEY_EC},
                                           std::pair<std::string, int>{"rsa2048", EVP_PKEY_RSA},
                                           std::pair<std::string, int>{"rsa4096", EVP_PKEY_RSA},
                                           std::pair<std::string, int>{"ed25519", EVP_PKEY_ED25519}),
                         [](const auto& info) {
                             std::string n = info.param.first;
                             for (auto& c : n) if (c == '-') c = '_';
                             return n;
                         });

TEST(generate_ca, default_algorithm_is_ecdsa_p256) {
    temp_dir dir;
    generate_ca_options opts;
    opts.outdir = dir.path;
    auto gen = generate_ca(opts);
    ASSERT_TRUE(gen) << gen.message();
    auto ca = certificate_authority::load(gen->cert_path, gen->key_path);
    ASSERT_TRUE(ca) << ca.message();
    EXPECT_EQ(EVP_PKEY_get_id((*ca)->key()), EVP_PKEY_EC);
    EXPECT_EQ(common_name((*ca)->cert()), "iron-proxy CA");
}

TEST(generate_ca, creates_missing_outdir_with_0755) {
    temp_dir dir;
    const mode_t old = ::umask(022);
    generate_ca_options opts;
    opts.outdir = dir / "a/b/c";
    auto gen = generate_ca(opts);
    ::umask(old);
    ASSERT_TRUE(gen) << gen.message();
    EXPECT_EQ(file_mode(dir / "a"), 0755u);
    EXPECT_EQ(file_mode(dir / "a/b/c"), 0755u);
    EXPECT_TRUE(fs::exists(dir / "a/b/c/ca.key"));
}

TEST(generate_ca, outdir_that_is_a_file_is_an_error) {
    temp_dir dir;
    spit(dir / "file", "x");
    generate_ca_options opts;
    opts.outdir = dir / "file";
    auto gen = generate_ca(opts);
    ASSERT_FALSE(gen);
    EXPECT_NE(gen.message().find("creating " + (dir / "file")), std::string::npos) << gen.message();
}

TEST(generate_ca, refuses_to_overwrite_either_file) {
    temp_dir dir;
    generate_ca_options opts;
    opts.outdir = dir.path;
    ASSERT_TRUE(generate_ca(opts));
    const std::string key_before = slurp(dir / "ca.key"), cert_before = slurp(dir / "ca.crt");

    auto again = generate_ca(opts);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.message(), "creating " + (dir / "ca.key") + ": File exists");
    EXPECT_EQ(slurp(dir / "ca.key"), key_before);
    EXPECT_EQ(slurp(dir / "ca.crt"), cert_before);

    // Only ca.crt present: the error names it and no ca.key is left behind.
    fs::remove(dir / "ca.key");
    auto third = generate_ca(opts);
    ASSERT_FALSE(third);
    EXPECT_EQ(third.message(), "creating " + (dir / "ca.crt") + ": File exists");
    EXPECT_FALSE(fs::exists(dir / "ca.key"));
    EXPECT_EQ(slurp(dir / "ca.crt"), cert_before);
}

TEST(generate_ca, unsupported_algorithm) {
    temp_dir dir;
    generate_ca_options opts;
    opts.outdir = dir / "never";
    opts.alg = "dsa";
    auto gen = generate_ca(opts);
    ASSERT_FALSE(gen);
    EXPECT_EQ(gen.message(), "unsupported algorithm \"dsa\" (use ecdsa-p256, rsa4096, rsa2048 or ed25519)");
    EXPECT_FALSE(fs::exists(dir / "never"));  // nothing touched the disk
}

TEST(generate_ca, non_positive_expiry) {
    temp_dir dir;
    generate_ca_options opts;
    opts.outdir = dir / "never";
    opts.expiry_hours = 0;
    auto gen = generate_ca(opts);
    ASSERT_FALSE(gen);
    EXPECT_EQ(gen.message(), "-expiry-hours must be positive, got 0");
    EXPECT_FALSE(fs::exists(dir / "never"));
}

// A valid CA to load; the malformed variants are written next to it.
class load_ca : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(ca_.ok()); }
    test::test_ca ca_;
    const temp_dir& dir_ = ca_.dir();
    const std::string& cert_ = ca_.cert_path();
    const std::string& key_ = ca_.key_path();
};

TEST_F(load_ca, missing_files) {
    auto r = certificate_authority::load(dir_ / "nope.crt", key_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "reading " + (dir_ / "nope.crt") + ": No such file or directory");
    r = certificate_authority::load(cert_, dir_ / "nope.key");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "reading " + (dir_ / "nope.key") + ": No such file or directory");
}

TEST_F(load_ca, garbage_certificate) {
    spit(dir_ / "bad.crt", "not a pem\n");
    auto r = certificate_authority::load(dir_ / "bad.crt", key_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message().rfind(dir_ / "bad.crt" + ": parsing CA certificate: ", 0), 0u) << r.message();
}

TEST_F(load_ca, certificate_that_is_not_a_ca) {
    pkey_ptr key(EVP_EC_gen("P-256"));
    spit(dir_ / "leaf.crt", pem_of(make_cert(key.get(), "CA:FALSE", "critical,keyCertSign").get()));
    spit(dir_ / "leaf.key", pem_of_key(key.get()));
    auto r = certificate_authority::load(dir_ / "leaf.crt", dir_ / "leaf.key");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), dir_ / "leaf.crt" + ": certificate is not a CA (BasicConstraints.IsCA is false)");

    // No BasicConstraints at all is not a CA either.
    spit(dir_ / "nobc.crt", pem_of(make_cert(key.get(), nullptr, "critical,keyCertSign").get()));
    r = certificate_authority::load(dir_ / "nobc.crt", dir_ / "leaf.key");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), dir_ / "nobc.crt" + ": certificate is not a CA (BasicConstraints.IsCA is false)");
}

TEST_F(load_ca, ca_without_key_cert_sign) {
    pkey_ptr key(EVP_EC_gen("P-256"));
    spit(dir_ / "k.key", pem_of_key(key.get()));
    spit(dir_ / "ds.crt", pem_of(make_cert(key.get(), "critical,CA:TRUE", "critical,digitalSignature").get()));
    auto r = certificate_authority::load(dir_ / "ds.crt", dir_ / "k.key");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), dir_ / "ds.crt" + ": CA certificate missing KeyUsageCertSign");

    spit(dir_ / "noku.crt", pem_of(make_cert(key.get(), "critical,CA:TRUE", nullptr).get()));
    r = certificate_authority::load(dir_ / "noku.crt", dir_ / "k.key");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), dir_ / "noku.crt" + ": CA certificate missing KeyUsageCertSign");

    // The minimal valid hand-made CA loads.
    spit(dir_ / "ok.crt", pem_of(make_cert(key.get(), "critical,CA:TRUE", "critical,keyCertSign").get()));
    auto ok = certificate_authority::load(dir_ / "ok.crt", dir_ / "k.key");
    EXPECT_TRUE(ok) << ok.message();
}

TEST_F(load_ca, garbage_key) {
    spit(dir_ / "bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    auto r = certificate_authority::load(cert_, dir_ / "bad.key");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message().rfind(dir_ / "bad.key" + ": parsing CA key (tried PKCS8, PKCS1, and EC formats): ", 0), 0u)
        << r.message();
}

TEST_F(load_ca, encrypted_key_fails_without_prompting) {
    auto ca = certificate_authority::load(cert_, key_);
    ASSERT_TRUE(ca);
    spit(dir_ / "enc.key", pem_of_key((*ca)->key(), false, EVP_aes_128_cbc()));
    auto r = certificate_authority::load(cert_, dir_ / "enc.key");
    ASSERT_FALSE(r);
    EXPECT_NE(r.message().find("parsing CA key"), std::string::npos) << r.message();
}

TEST_F(load_ca, mismatched_key) {
    test::test_ca other("Other CA");
    ASSERT_TRUE(other.ok());
    auto r = certificate_authority::load(cert_, other.key_path());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), other.key_path() + ": CA key does not match CA certificate");
}

TEST_F(load_ca, accepts_pkcs1_and_sec1_keys) {
    for (const char* alg : {"rsa2048", "ecdsa-p256"}) {
        test::test_ca made("Iron Unit Test CA", alg);
        ASSERT_TRUE(made.ok());
        const temp_dir& d = made.dir();
        const std::string traditional = pem_of_key(made.authority()->key(), true);
        const char* header = std::string(alg) == "rsa2048" ? "-----BEGIN RSA PRIVATE KEY-----"
                                                           : "-----BEGIN EC PRIVATE KEY-----";
        EXPECT_EQ(traditional.rfind(header, 0), 0u) << traditional;
        spit(d / "trad.key", traditional);
        auto again = certificate_authority::load(made.cert_path(), d / "trad.key");
        EXPECT_TRUE(again) << alg << ": " << again.message();
    }
}

TEST_F(load_ca, reads_the_first_certificate_of_a_bundle) {
    // A bundle "CA, then something else": only the first block counts.
    pkey_ptr key(EVP_EC_gen("P-256"));
    spit(dir_ / "bundle.crt", slurp(cert_) + pem_of(make_cert(key.get(), "CA:FALSE", nullptr).get()));
    auto r = certificate_authority::load(dir_ / "bundle.crt", key_);
    EXPECT_TRUE(r) << r.message();
}

TEST(openssl_error_string, drains_the_queue) {
    ERR_clear_error();
    EXPECT_EQ(openssl_error_string(), "unknown OpenSSL error");
    ERR_raise(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH);
    EXPECT_NE(openssl_error_string().find("key values mismatch"), std::string::npos);
    EXPECT_EQ(ERR_peek_error(), 0ul);
}

}  // namespace
}  // namespace iron::tls
