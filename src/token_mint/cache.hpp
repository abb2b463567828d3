#pragma once
// The token cache every token-minting transform (oauth_token, gcp_auth, gcp_id_token) shares: one
// bearer token per configured entry, reused while fresh, and refreshed by ONE fetch however many
// requests need it at once (single flight). Requests that arrive during the fetch wait for its
// outcome on their own worker's event loop; no thread ever blocks.
//
// Freshness: a token is refreshed a little before it expires (`refresh_skew`: 60 s, or half the
// lifetime of a token shorter than two minutes), so a request never carries a token that dies on
// its way. A failed fetch is not cached: the next request tries again.
//
// The token is keyed by a fingerprint of the credentials it was minted from (a digest, never the
// values): when a credential changes (a rotated secret), the old token is dropped and a new one
// minted with the new values.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "secrets/source.hpp"

namespace iron::token_mint {

using clock = std::chrono::steady_clock;

// What one fetch produced: a token and its lifetime, or why there is none.
struct mint_outcome {
    secrets::value_ptr token;          // null on failure; wiped when the last holder drops it
    std::chrono::seconds lifetime{0};  // as the endpoint said (<= 0: unknown, taken as one hour)
    std::string principal;             // whom the token is for (a service account's e-mail), or ""
    // Failure: `reason` is short and safe for an annotation (invalid_grant, token_endpoint_http_503,
    // mint_failed, …); `detail` says more for the log. Neither ever holds a credential or a token.
    std::string reason;
    std::string detail;

    bool ok() const { return token != nullptr; }
    static mint_outcome failure(std::string reason, std::string detail);
};

// How long before expiry a token of this lifetime is refreshed.
std::chrono::milliseconds refresh_skew(std::chrono::seconds lifetime);

class token_cache {
public:
    using fetcher = std::function<boost::asio::awaitable<mint_outcome>()>;

    token_cache() = default;
    token_cache(const token_cache&) = delete;
    token_cache& operator=(const token_cache&) = delete;

    // The token for `fingerprint`: the cached one while fresh; otherwise the outcome of one fetch
    // shared by every caller that asks while it runs. A joining caller waits at most `wait_bound`.
    boost::asio::awaitable<mint_outcome> get(std::string fingerprint, fetcher fetch, std::chrono::nanoseconds wait_bound);

    // The cached token for `fingerprint` if still fresh (no waiting, no fetch), else a failure.
    mint_outcome cached(std::string_view fingerprint) const;

    // How many fetches ran (tests, logs).
    std::uint64_t fetches() const;

private:
    struct flight;
    boost::asio::awaitable<mint_outcome> lead(std::shared_ptr<flight> f, fetcher fetch);
    static boost::asio::awaitable<mint_outcome> join(std::shared_ptr<flight> f, std::chrono::nanoseconds wait_bound);
    void settle(const std::shared_ptr<flight>& f, const mint_outcome& outcome);

    mutable std::mutex mu_;
    std::string fingerprint_;
    mint_outcome token_;  // ok() when a token is cached
    clock::time_point fresh_until_{};
    std::shared_ptr<flight> flight_;  // the fetch in progress, if any
    std::uint64_t fetches_ = 0;
};

}  // namespace iron::token_mint
