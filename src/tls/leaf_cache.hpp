#pragma once
// Leaf certificates minted per SNI (Go mints a key per leaf, names it exactly as sent and serves a
// cached leaf until it expires):
// ECDSA P-256, one process-wide leaf key, CN = SAN = the normalised SNI (an IP-literal SNI gets an
// IP SAN), chain [leaf, CA]; LRU of `capacity`; concurrent mints for one name collapse into one;
// a cached leaf is re-minted once 2/3 of its lifetime has passed. Thread-safe.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tls/ca.hpp"

namespace iron::tls {

struct leaf {
    x509_ptr cert;
    std::chrono::system_clock::time_point not_after;
    std::chrono::system_clock::time_point refresh_at;
};

class leaf_cache {
public:
    using clock_fn = std::function<std::chrono::system_clock::time_point()>;

    // capacity 0 => 1000 (the config default). validity <= 0 => 72h (the config default).
    // `now` is the clock used for validity and refresh decisions; empty => system_clock::now
    // (tests inject a fake one to step past the refresh point).
    leaf_cache(std::shared_ptr<const certificate_authority> ca, std::size_t capacity, std::chrono::hours validity,
               clock_fn now = {});
    ~leaf_cache();

    // The leaf for this SNI, minting it on a miss or once the cached one is past refresh_at.
    // The key is the SNI lower-cased with one trailing dot removed. Concurrent calls for one
    // missing name wait for a single mint; other names never wait behind it. Returns nullptr if
    // the name is unusable (empty, or bytes outside printable ASCII) or minting failed.
    std::shared_ptr<const leaf> get(std::string_view sni);

    EVP_PKEY* leaf_key() const;  // the shared leaf private key
    X509* ca_cert() const;

    // Counters for metrics/tests.
    std::size_t mints() const;
    std::size_t size() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace iron::tls
