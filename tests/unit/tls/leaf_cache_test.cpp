#include "tls/leaf_cache.hpp"
#include "support/test_ca.hpp"


#include <atomic>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace iron::tls {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::system_clock;

// A CA of its own (the test_ca's directory goes with it; the loaded CA stays in memory).
std::shared_ptr<const certificate_authority> make_ca(const std::string& alg = "ecdsa-p256") {
    test::test_ca ca("Leaf Test CA", alg);
    return ca.authority();
}

std::string common_name(X509* cert) {
    char buf[512] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

struct general_names_free { void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); } };

// SANs as "DNS:x" / "IP:<raw length>".
std::vector<std::string> sans(X509* cert) {
    std::unique_ptr<GENERAL_NAMES, general_names_free> names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    std::vector<std::string> out;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
        if (gn->type == GEN_DNS)
            out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                                               ASN1_STRING_length(gn->d.dNSName)));
        else if (gn->type == GEN_IPADD)
            out.push_back("IP:" + std::to_string(ASN1_STRING_length(gn->d.iPAddress)));
        else
            out.push_back("other");
    }
    return out;
}

// Verifies `cert` against a store holding only the CA, as a TLS client would (purpose sslserver).
int verify_against(X509* ca, X509* cert) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, cert, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    const int ok = X509_verify_cert(ctx);
    const int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

class leaf_cache_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ca_ = make_ca(); }
    static void TearDownTestSuite() { ca_.reset(); }
    static inline std::shared_ptr<const certificate_authority> ca_;
};

TEST_F(leaf_cache_test, mints_a_leaf_with_the_expected_fields) {
    leaf_cache cache(ca_, 10, 72h);
    const auto before = clock_type::now();
    auto leaf = cache.get("api.example.com");
    ASSERT_TRUE(leaf);
    X509* cert = leaf->cert.get();
    EXPECT_EQ(common_name(cert), "api.example.com");
    EXPECT_EQ(sans(cert), std::vector<std::string>{"DNS:api.example.com"});
    EXPECT_EQ(X509_get_version(cert), 2);
    EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca_->cert())), 0);
    EXPECT_EQ(X509_check_private_key(cert, cache.leaf_key()), 1);
    // The served certificate was parsed back from its DER (cached encoding) and points at the
    // shared key object itself, so the per-handshake cert/key check is a pointer comparison.
    EXPECT_EQ(X509_get0_pubkey(cert), cache.leaf_key());
    EXPECT_EQ(EVP_PKEY_get_id(cache.leaf_key()), EVP_PKEY_EC);
    EXPECT_EQ(cache.ca_cert(), ca_->cert());

    const uint32_t flags = X509_get_extension_flags(cert);
    EXPECT_FALSE(flags & EXFLAG_CA);
    EXPECT_TRUE(flags & EXFLAG_BCONS);  // CA:FALSE present
    EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert, X509_get_ext_by_NID(cert, NID_key_usage, -1))), 1);
    EXPECT_EQ(X509_get_extended_key_usage(cert), static_cast<uint32_t>(XKU_SSL_SERVER));
    ASSERT_NE(X509_get0_subject_key_id(cert), nullptr);
    ASSERT_NE(X509_get0_authority_key_id(cert), nullptr);
    EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert), X509_get0_subject_key_id(ca_->cert())), 0);
    EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);

    BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    EXPECT_FALSE(BN_is_negative(serial));
    EXPECT_LE(BN_num_bits(serial), 128);
    EXPECT_GT(BN_num_bits(serial), 64);  // random, so almost surely well above 64 bits
    BN_free(serial);

    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    EXPECT_EQ(days * 86400 + secs, 72 * 3600 + 60);
    EXPECT_GE(leaf->not_after, before + 72h - 2s);
    EXPECT_LE(leaf->not_after, clock_type::now() + 72h + 2s);
    EXPECT_NEAR(std::chrono::duration<double>(leaf->not_after - leaf->refresh_at).count(),
                (72 * 3600 + 60) / 3.0, 1.0);

    EXPECT_EQ(verify_against(ca_->cert(), cert), X509_V_OK);
    EXPECT_EQ(X509_check_host(cert, "api.example.com", 0, 0, nullptr), 1);
    EXPECT_NE(X509_check_host(cert, "other.example.com", 0, 0, nullptr), 1);
    EXPECT_EQ(cache.mints(), 1u);
    EXPECT_EQ(cache.size(), 1u);
}

TEST_F(leaf_cache_test, ip_literal_gets_an_ip_san) {
    leaf_cache cache(ca_, 10, 72h);
    auto v4 = cache.get("10.1.2.3");
    ASSERT_TRUE(v4);
    EXPECT_EQ(sans(v4->cert.get()), std::vector<std::string>{"IP:4"});
    EXPECT_EQ(common_name(v4->cert.get()), "10.1.2.3");
    EXPECT_EQ(X509_check_ip_asc(v4->cert.get(), "10.1.2.3", 0), 1);
    EXPECT_EQ(verify_against(ca_->cert(), v4->cert.get()), X509_V_OK);

    auto v6 = cache.get("2001:DB8::1");
    ASSERT_TRUE(v6);
    EXPECT_EQ(sans(v6->cert.get()), std::vector<std::string>{"IP:16"});
    EXPECT_EQ(X509_check_ip_asc(v6->cert.get(), "2001:db8::1", 0), 1);
}

TEST_F(leaf_cache_test, hostile_name_cannot_inject_extra_sans) {
    leaf_cache cache(ca_, 10, 72h);
    auto leaf = cache.get("a.test,DNS:evil.test,IP:1.2.3.4");
    ASSERT_TRUE(leaf);
    EXPECT_EQ(sans(leaf->cert.get()), std::vector<std::string>{"DNS:a.test,dns:evil.test,ip:1.2.3.4"});
    EXPECT_NE(X509_check_host(leaf->cert.get(), "evil.test", 0, 0, nullptr), 1);
}

TEST_F(leaf_cache_test, long_names_still_get_a_cn) {
    leaf_cache cache(ca_, 10, 72h);
    const std::string name = std::string(70, 'a') + ".example.com";
    auto leaf = cache.get(name);
    ASSERT_TRUE(leaf);
    EXPECT_EQ(common_name(leaf->cert.get()), name);
    EXPECT_EQ(X509_check_host(leaf->cert.get(), name.c_str(), name.size(), 0, nullptr), 1);
}

TEST_F(leaf_cache_test, refuses_unusable_names) {
    leaf_cache cache(ca_, 10, 72h);
    EXPECT_EQ(cache.get(""), nullptr);
    EXPECT_EQ(cache.get("."), nullptr);
    EXPECT_EQ(cache.get("a b.test"), nullptr);
    EXPECT_EQ(cache.get("caf\xc3\xa9.test"), nullptr);
    EXPECT_EQ(cache.get(std::string_view("a\0b", 3)), nullptr);
    EXPECT_EQ(cache.mints(), 0u);
    EXPECT_EQ(cache.size(), 0u);
}

TEST_F(leaf_cache_test, cache_hit_and_normalisation) {
    leaf_cache cache(ca_, 10, 72h);
    auto a = cache.get("example.com");
    ASSERT_TRUE(a);
    EXPECT_EQ(cache.get("example.com"), a);
    EXPECT_EQ(cache.get("EXAMPLE.Com"), a);
    EXPECT_EQ(cache.get("example.com."), a);
    EXPECT_EQ(cache.get("Example.COM."), a);
    EXPECT_EQ(cache.mints(), 1u);
    EXPECT_NE(cache.get("example.com.."), a);  // only one trailing dot is stripped
    auto b = cache.get("Other.Example.com");
    ASSERT_TRUE(b);
    EXPECT_EQ(common_name(b->cert.get()), "other.example.com");
    EXPECT_EQ(cache.mints(), 3u);
}

TEST_F(leaf_cache_test, lru_eviction_follows_use_order) {
    leaf_cache cache(ca_, 2, 72h);
    auto a = cache.get("a.test");
    auto b = cache.get("b.test");
    EXPECT_EQ(cache.get("a.test"), a);  // a is now most recent; b is the eviction candidate
    auto c = cache.get("c.test");
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_EQ(cache.mints(), 3u);
    EXPECT_EQ(cache.get("a.test"), a);
    EXPECT_EQ(cache.get("c.test"), c);
    EXPECT_EQ(cache.mints(), 3u);
    auto b2 = cache.get("b.test");  // evicted => minted again, and now a is the oldest
    EXPECT_NE(b2, b);
    EXPECT_EQ(cache.mints(), 4u);
    EXPECT_NE(cache.get("a.test"), a);
    EXPECT_EQ(cache.mints(), 5u);
    EXPECT_EQ(cache.size(), 2u);
}

TEST_F(leaf_cache_test, zero_capacity_means_default) {
    leaf_cache cache(ca_, 0, 72h);
    for (int i = 0; i < 20; ++i) cache.get("h" + std::to_string(i) + ".test");
    EXPECT_EQ(cache.size(), 20u);
    EXPECT_EQ(cache.mints(), 20u);
}

TEST_F(leaf_cache_test, refreshes_after_two_thirds_of_the_lifetime) {
    const auto t0 = clock_type::now();
    auto now = std::make_shared<std::atomic<clock_type::time_point>>(t0);
    leaf_cache cache(ca_, 10, 3h, [now] { return now->load(); });
    auto first = cache.get("r.test");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->not_after, t0 + 3h);
    // refresh_at = NotBefore + 2/3 * (3h + 1min) = t0 + 1h59m40s.
    EXPECT_EQ(first->refresh_at, t0 - 60s + (3h + 60s) * 2 / 3);

    now->store(t0 + 1h + 59min);
    EXPECT_EQ(cache.get("r.test"), first);
    EXPECT_EQ(cache.mints(), 1u);

    now->store(t0 + 2h);
    auto second = cache.get("r.test");
    ASSERT_TRUE(second);
    EXPECT_NE(second, first);
    EXPECT_EQ(second->not_after, t0 + 5h);
    EXPECT_EQ(cache.mints(), 2u);
    EXPECT_EQ(cache.size(), 1u);
    EXPECT_EQ(cache.get("r.test"), second);
    EXPECT_EQ(cache.mints(), 2u);
    // The old leaf stays valid for whoever still holds it.
    EXPECT_TRUE(first->cert);
}

TEST_F(leaf_cache_test, leaves_from_rsa_and_ed25519_cas_verify) {
    for (const char* alg : {"rsa2048", "ed25519"}) {
        auto ca = make_ca(alg);
        ASSERT_TRUE(ca);
        leaf_cache cache(ca, 10, 24h);
        auto leaf = cache.get("x.test");
        ASSERT_TRUE(leaf) << alg;
        EXPECT_EQ(verify_against(ca->cert(), leaf->cert.get()), X509_V_OK) << alg;
        EXPECT_EQ(X509_get_signature_nid(leaf->cert.get()),
                  std::string(alg) == "ed25519" ? NID_ED25519 : NID_sha256WithRSAEncryption);
        // A leaf does not verify against some other CA.
        EXPECT_NE(verify_against(ca_->cert(), leaf->cert.get()), X509_V_OK) << alg;
    }
}

TEST_F(leaf_cache_test, ca_without_subject_key_identifier) {
    // A hand-made CA with no SKI: the leaf's AKI cannot copy one, which must not stop minting.
    pkey_ptr key(EVP_EC_gen("P-256"));
    x509_ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("bare"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key.get());
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"}, std::pair{NID_key_usage, "critical,keyCertSign"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(cert.get(), key.get(), EVP_sha256());
    ASSERT_EQ(X509_get0_subject_key_id(cert.get()), nullptr);
    auto ca = std::make_shared<const certificate_authority>(std::move(cert), std::move(key));
    leaf_cache cache(ca, 10, 24h);
    auto leaf = cache.get("bare.test");
    ASSERT_TRUE(leaf);
    EXPECT_EQ(verify_against(ca->cert(), leaf->cert.get()), X509_V_OK);
    EXPECT_EQ(ERR_peek_error(), 0ul);
}

TEST_F(leaf_cache_test, concurrent_gets_of_one_name_mint_once) {
    // A slow clock widens the mint window so that the other threads find it in flight.
    leaf_cache cache(ca_, 10, 72h, [] {
        std::this_thread::sleep_for(20ms);
        return clock_type::now();
    });
    constexpr int n = 8;
    std::latch start(n);
    std::vector<std::shared_ptr<const leaf>> got(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            got[i] = cache.get("same.test");
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(cache.mints(), 1u);
    for (const auto& g : got) {
        ASSERT_TRUE(g);
        EXPECT_EQ(g, got[0]);
    }
}

TEST_F(leaf_cache_test, concurrent_gets_of_many_names) {
    leaf_cache cache(ca_, 1000, 72h);
    constexpr int n = 8, names = 50;
    std::latch start(n);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < n; ++i)
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (int k = 0; k < names; ++k)
                if (!cache.get("n" + std::to_string(k) + ".test")) ++failures;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(cache.mints(), static_cast<std::size_t>(names));
    EXPECT_EQ(cache.size(), static_cast<std::size_t>(names));
}

TEST_F(leaf_cache_test, other_names_do_not_wait_behind_a_mint) {
    // The first clock call (inside the mint of "slow.test") blocks until the main thread has
    // minted "fast.test"; with a global lock held while signing that would time out.
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false, released = false, timed_out = false;
    std::atomic<int> calls{0};
    leaf_cache cache(ca_, 10, 72h, [&] {
        if (calls.fetch_add(1) == 0) {
            std::unique_lock lock(mu);
            entered = true;
            cv.notify_all();
            timed_out = !cv.wait_for(lock, 5s, [&] { return released; });
        }
        return clock_type::now();
    });
    std::shared_ptr<const leaf> slow;
    std::thread t([&] { slow = cache.get("slow.test"); });
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return entered; });
    }
    auto fast = cache.get("fast.test");
    {
        std::lock_guard lock(mu);
        released = true;
    }
    cv.notify_all();
    t.join();
    EXPECT_TRUE(fast);
    EXPECT_TRUE(slow);
    EXPECT_FALSE(timed_out);
    EXPECT_EQ(cache.mints(), 2u);
}

TEST(leaf_cache, requires_a_ca) {
    EXPECT_THROW(leaf_cache(nullptr, 10, 72h), std::invalid_argument);
}

}  // namespace
}  // namespace iron::tls
