#pragma once
// Leaf certificates minted per SNI (reference §4.4, with the §14 item 16 improvements):
// ECDSA P-256, one process-wide leaf key, CN = SAN = the normalised SNI (an IP-literal SNI gets an
// IP SAN), chain [leaf, CA]; LRU of `capacity`; concurrent mints for one name collapse into one;
// a cached leaf is re-minted once 2/3 of its lifetime has passed. Thread-safe.
#include <chrono>
#include <cstddef>
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
    leaf_cache(std::shared_ptr<const certificate_authority> ca, std::size_t capacity, std::chrono::hours validity);
    ~leaf_cache();

    // The leaf for this SNI, minting it on a miss. Returns nullptr only if minting failed.
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
