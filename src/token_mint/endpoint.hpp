#pragma once
// Calling a token endpoint (an OAuth2 token URL, Google's token_uri, the GCE metadata server)
// through the proxy's outbound client (outbound/http_client: TLS verified, a deadline, no
// upstream_deny_cidrs check — the endpoint is the operator's), and reading its answer: the token,
// its lifetime, a rotated refresh token, or the OAuth2 error code.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/headers.hpp"
#include "core/result.hpp"
#include "outbound/http_client.hpp"
#include "token_mint/cache.hpp"

namespace iron::token_mint {

// One request to a token endpoint. Its body and header values hold credentials: wiped on
// destruction, never logged.
struct token_call {
    std::string url;  // absolute http(s) URL, query allowed
    std::string method = "POST";
    core::header_list headers;
    std::string body;                          // application/x-www-form-urlencoded when POST
    std::string token_field = "access_token";  // "id_token" for Google ID tokens
    ~token_call();
};

// What the endpoint answered, beyond the outcome.
struct token_reply {
    mint_outcome outcome;
    secrets::value_ptr refresh_token;  // a rotated refresh token, if the endpoint sent one
};

// The deadline of one token-endpoint call.
inline constexpr std::chrono::seconds call_timeout{15};

// One outbound client per endpoint origin, made on first use and kept (shared by every worker).
class endpoint_clients {
public:
    // The client for `url`'s origin and the request target (path and query) within it.
    result<std::pair<const outbound::http_client*, std::string>> for_url(std::string_view url);

private:
    std::mutex mu_;
    std::map<std::string, std::unique_ptr<outbound::http_client>> clients_;
};

// Sends `call` and reads the answer. Failure reasons: the OAuth2 `error` code the endpoint
// returned (invalid_grant, …), token_endpoint_http_<status>, or mint_failed (no answer, no token).
boost::asio::awaitable<token_reply> call_endpoint(endpoint_clients& clients, const token_call& call);

// Reads a token endpoint's answer (exposed for the unit tests).
token_reply read_reply(int status, std::string_view body, const token_call& call);

// The `exp` claim of a JWT (an ID token carries its lifetime there), or 0.
std::int64_t jwt_expiry(std::string_view jwt);

// An application/x-www-form-urlencoded body from name/value pairs (values percent-encoded).
std::string form_body(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);
void add_form_field(std::string& body, std::string_view name, std::string_view value);
// One field of a form-encoded body, decoded ("" when absent).
std::string form_field(std::string_view body, std::string_view name);

// SHA-256 (hex) over name=value pairs: what a cached token is keyed by. Never the values.
class fingerprint_builder {
public:
    fingerprint_builder();
    ~fingerprint_builder();
    fingerprint_builder(const fingerprint_builder&) = delete;
    fingerprint_builder& operator=(const fingerprint_builder&) = delete;
    void add(std::string_view name, std::string_view value);
    std::string finish();

private:
    void* ctx_;
};

}  // namespace iron::token_mint
