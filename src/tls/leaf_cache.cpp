// Leaf certificates minted per SNI (see leaf_cache.hpp).
#include "tls/leaf_cache.hpp"

#include <arpa/inet.h>

#include <atomic>
#include <future>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "metrics/metrics.hpp"

namespace iron::tls {

namespace {

constexpr std::size_t default_capacity = 1000;
constexpr std::chrono::hours default_validity{72};

struct general_names_deleter { void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); } };
struct general_name_deleter { void operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); } };

// Lower-case, one trailing dot removed: "Example.COM." and "example.com" are the same site and
// must share one leaf. Returns "" for names we refuse to mint (empty or non-printable-ASCII
// bytes): an SNI is a DNS name or, from sloppy clients, an IP literal, and anything else would
// only produce an invalid IA5String SAN.
std::string normalise(std::string_view sni) {
    if (!sni.empty() && sni.back() == '.') sni.remove_suffix(1);
    std::string out;
    out.reserve(sni.size());
    for (char c : sni) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) return {};
        out.push_back(static_cast<char>(u >= 'A' && u <= 'Z' ? u - 'A' + 'a' : u));
    }
    return out;
}

// The binary form of an IPv4/IPv6 literal, or "" if `name` is a DNS name.
std::string ip_bytes(const std::string& name) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, name.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
    if (inet_pton(AF_INET6, name.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 16);
    return {};
}

// SAN built structurally rather than through a "DNS:<name>" config string, so that a hostile SNI
// containing ',' or ':' cannot inject extra names.
bool add_san(X509* cert, const std::string& name) {
    std::unique_ptr<GENERAL_NAMES, general_names_deleter> names(GENERAL_NAMES_new());
    std::unique_ptr<GENERAL_NAME, general_name_deleter> gn(GENERAL_NAME_new());
    if (!names || !gn) return false;
    ASN1_STRING* value = nullptr;
    const std::string ip = ip_bytes(name);
    if (!ip.empty()) {
        value = ASN1_OCTET_STRING_new();
        if (!value || ASN1_OCTET_STRING_set(value, reinterpret_cast<const unsigned char*>(ip.data()),
                                            static_cast<int>(ip.size())) != 1) {
            ASN1_OCTET_STRING_free(value);
            return false;
        }
        GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, value);
    } else {
        value = ASN1_IA5STRING_new();
        if (!value || ASN1_STRING_set(value, name.data(), static_cast<int>(name.size())) != 1) {
            ASN1_IA5STRING_free(value);
            return false;
        }
        GENERAL_NAME_set0_value(gn.get(), GEN_DNS, value);
    }
    if (!sk_GENERAL_NAME_push(names.get(), gn.get())) return false;
    gn.release();  // owned by `names` now
    return X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

}  // namespace

struct leaf_cache::impl {
    using leaf_ptr = std::shared_ptr<const leaf>;
    struct entry {
        leaf_ptr value;
        std::list<std::string>::iterator lru_pos;
    };

    std::shared_ptr<const certificate_authority> ca;
    std::size_t capacity;
    std::chrono::system_clock::duration validity;
    clock_fn now;
    pkey_ptr key;

    mutable std::atomic<std::size_t> mint_count{0};

    // Guards the LRU and the in-flight table, never held while signing.
    mutable std::mutex mu;
    std::list<std::string> lru;  // front = most recently used
    std::unordered_map<std::string, entry> entries;
    // Names being minted right now; latecomers for the same name wait on the future.
    std::unordered_map<std::string, std::shared_future<leaf_ptr>> in_flight;

    leaf_ptr mint(const std::string& name) const;
    void store(const std::string& name, leaf_ptr value);  // requires mu
};

leaf_cache::impl::leaf_ptr leaf_cache::impl::mint(const std::string& name) const {
    x509_ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), 2) != 1 || !set_random_serial(cert.get())) return nullptr;

    // NotBefore a minute back tolerates clients whose clocks run slightly behind.
    const auto issued = now();
    const auto not_before = issued - std::chrono::seconds(60);
    const auto not_after = issued + validity;
    if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), std::chrono::system_clock::to_time_t(not_before)) ||
        !ASN1_TIME_set(X509_getm_notAfter(cert.get()), std::chrono::system_clock::to_time_t(not_after)))
        return nullptr;

    // UTF8String set directly (not via MBSTRING_*) so names over 64 bytes, the CN upper bound
    // OpenSSL would enforce, still get a CN like the Go proxy gives them; clients use the SAN.
    if (X509_NAME_add_entry_by_NID(X509_get_subject_name(cert.get()), NID_commonName, V_ASN1_UTF8STRING,
                                   reinterpret_cast<const unsigned char*>(name.data()),
                                   static_cast<int>(name.size()), -1, 0) != 1 ||
        X509_set_issuer_name(cert.get(), X509_get_subject_name(ca->cert())) != 1 ||
        X509_set_pubkey(cert.get(), key.get()) != 1)
        return nullptr;

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca->cert(), cert.get(), nullptr, nullptr, 0);
    if (!add_san(cert.get(), name) ||
        !add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(cert.get(), &ctx, NID_ext_key_usage, "serverAuth") ||
        !add_ext(cert.get(), &ctx, NID_basic_constraints, "CA:FALSE") ||
        !add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash"))
        return nullptr;
    // "keyid" copies the CA's SubjectKeyIdentifier (or, for a CA without one, OpenSSL 3 derives
    // it from the CA key); skip the extension rather than fail if neither works.
    if (!add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid")) ERR_clear_error();

    if (X509_sign(cert.get(), ca->key(), signing_digest(ca->key())) <= 0) return nullptr;

    // Serve a copy parsed back from DER: OpenSSL keeps the encoding of a parsed certificate's
    // signed part, so the i2d_X509 in every handshake's Certificate message copies those bytes
    // instead of re-encoding the names and extensions of a freshly built one (2.0 -> 0.4 µs, ~2%
    // of a handshake's instructions). Its public key is then pointed back at the shared key
    // object (same key, same DER, the cached encoding stays valid), so the cert/key match check
    // in SSL_use_cert_and_key on every handshake is a pointer comparison, not a point comparison.
    unsigned char* der = nullptr;
    const int der_len = i2d_X509(cert.get(), &der);
    if (der_len <= 0) return nullptr;
    const unsigned char* p = der;
    x509_ptr parsed(d2i_X509(nullptr, &p, der_len));
    OPENSSL_free(der);
    if (!parsed || X509_set_pubkey(parsed.get(), key.get()) != 1) return nullptr;

    auto out = std::make_shared<leaf>();
    out->cert = std::move(parsed);
    out->not_after = not_after;
    // Refresh at 2/3 of the lifetime so a cached leaf is never served close to expiry.
    out->refresh_at = not_before + (not_after - not_before) * 2 / 3;
    mint_count.fetch_add(1, std::memory_order_relaxed);
    return out;
}

void leaf_cache::impl::store(const std::string& name, leaf_ptr value) {
    if (auto it = entries.find(name); it != entries.end()) {
        it->second.value = std::move(value);
        lru.splice(lru.begin(), lru, it->second.lru_pos);
        return;
    }
    lru.push_front(name);
    entries.emplace(name, entry{std::move(value), lru.begin()});
    while (entries.size() > capacity) {
        entries.erase(lru.back());
        lru.pop_back();
    }
}

leaf_cache::leaf_cache(std::shared_ptr<const certificate_authority> ca, std::size_t capacity,
                       std::chrono::hours validity, clock_fn now)
    : impl_(std::make_unique<impl>()) {
    // Construction happens at start-up, where exceptions are the error channel.
    if (!ca || !ca->cert() || !ca->key()) throw std::invalid_argument("leaf_cache: no CA");
    impl_->ca = std::move(ca);
    impl_->capacity = capacity == 0 ? default_capacity : capacity;
    impl_->validity = validity.count() > 0 ? validity : default_validity;
    impl_->now = now ? std::move(now) : clock_fn([] { return std::chrono::system_clock::now(); });
    // One key for every leaf: minting is then a single signature. The key never leaves the
    // process, so a key per leaf would add keygen cost without isolating anything.
    impl_->key.reset(EVP_EC_gen("P-256"));
    if (!impl_->key) throw std::runtime_error("generating leaf key: " + openssl_error_string());
}

leaf_cache::~leaf_cache() = default;

std::shared_ptr<const leaf> leaf_cache::get(std::string_view sni) {
    const std::string name = normalise(sni);
    if (name.empty()) return nullptr;
    impl& d = *impl_;

    std::promise<impl::leaf_ptr> promise;
    {
        std::unique_lock lock(d.mu);
        if (auto it = d.entries.find(name); it != d.entries.end() && d.now() < it->second.value->refresh_at) {
            d.lru.splice(d.lru.begin(), d.lru, it->second.lru_pos);
            metrics::leaf_cache_hit();
            return it->second.value;
        }
        if (auto it = d.in_flight.find(name); it != d.in_flight.end()) {
            auto pending = it->second;
            lock.unlock();
            metrics::leaf_cache_hit();  // another handshake is minting it: no signature of ours
            return pending.get();
        }
        d.in_flight.emplace(name, promise.get_future().share());
    }

    metrics::leaf_cache_miss();
    // Sign outside the lock: other names are served (and minted) meanwhile.
    impl::leaf_ptr minted;
    try {
        minted = d.mint(name);
    } catch (...) {  // bad_alloc: waiters must still be released
        minted = nullptr;
    }
    if (!minted) ERR_clear_error();  // leave no stale errors for the next TLS call on this thread
    {
        std::lock_guard lock(d.mu);
        d.in_flight.erase(name);
        if (minted) d.store(name, minted);
    }
    promise.set_value(minted);
    return minted;
}

EVP_PKEY* leaf_cache::leaf_key() const { return impl_->key.get(); }
X509* leaf_cache::ca_cert() const { return impl_->ca->cert(); }
std::size_t leaf_cache::mints() const { return impl_->mint_count.load(std::memory_order_relaxed); }
std::size_t leaf_cache::size() const {
    std::lock_guard lock(impl_->mu);
    return impl_->entries.size();
}

}  // namespace iron::tls
