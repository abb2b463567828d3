#pragma once
// The `oauth_token` transform: mints OAuth2 access tokens from a grant and injects them, so the
// workload never holds the credentials behind them. `tokens` is a list of entries; the first
// entry whose rules match a request decides. Entry keys (as the Go proxy's):
//   grant: refresh_token (refresh_token, client_id, client_secret?) | client_credentials
//          (client_id, client_secret) | password (username, password, client_id, client_secret?) |
//          jwt_bearer (issuer, subject, private_key [RSA PEM], private_key_id?, audience [string])
//          — every credential is a secret source;
//   token_endpoint (required), scopes, rules (at least one), header (Authorization),
//   value_prefix ("Bearer "), require (false), token_endpoint_headers (header → source, sent on
//   the token request with the spelling given).
// Client authentication goes in the form body. Tokens are cached per entry and refreshed by one
// fetch before they expire (token_mint/cache.hpp); a change in any credential value mints anew.
//
// A request to a configured token endpoint itself (host and path, any method) is answered with a
// placeholder token (`stubbed: oauth2_token_endpoint`), so a workload's SDK can run its own token
// dance without ever seeing a real token. When minting fails: require: false forwards the request
// without a token (annotations grant, error, skipped: token_unavailable); require: true answers
// 502 {"error":"oauth_token failed to mint an access token","grant":"<grant>"} (rejected:
// token_unavailable). Success annotates grant and injected: ["header:<Name>"].
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "secrets/source.hpp"
#include "token_mint/cache.hpp"
#include "token_mint/endpoint.hpp"

namespace iron::transforms::oauth_token {

using named_source = std::pair<std::string, std::shared_ptr<secrets::source>>;

struct token_entry {
    std::string grant;
    std::vector<named_source> credentials;       // field → source, sorted by field
    std::vector<named_source> endpoint_headers;  // header (exact spelling) → source, sorted
    std::string audience;                        // jwt_bearer
    std::string token_endpoint;
    std::string stub_host, stub_path;            // the endpoint as requests name it
    std::vector<std::string> scopes;
    pipeline::rule_set rules;
    std::string header = "Authorization";
    std::string value_prefix = "Bearer ";
    bool require = false;

    mutable token_mint::token_cache cache;
    // A refresh token the endpoint rotated, used instead of the configured one while the
    // credentials it was issued for (their fingerprint) stay the same.
    mutable std::mutex rotated_mu;
    mutable std::string rotated_for;
    mutable secrets::value_ptr rotated_refresh_token;

    std::vector<const secrets::source*> sources() const;
};

class oauth_token_transform final : public pipeline::transform {
public:
    explicit oauth_token_transform(std::vector<std::unique_ptr<token_entry>> entries);

    static result<std::unique_ptr<oauth_token_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "oauth_token"; }
    // Reached only for stubs, or if the request came to match after the pipeline chose not to
    // await: a cached fresh token is used, otherwise it counts as a mint failure.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.swaps_secrets = true;
        return need;
    }
    void refresh() const override;

    const std::vector<std::unique_ptr<token_entry>>& entries() const { return entries_; }

private:
    const token_entry* match(const pipeline::exchange& ex) const;
    bool is_token_endpoint(const pipeline::exchange& ex) const;
    pipeline::verdict settle(pipeline::exchange& ex, const token_entry& e, const token_mint::mint_outcome& got) const;

    std::vector<std::unique_ptr<token_entry>> entries_;
    mutable token_mint::endpoint_clients clients_;
};

// The token request for one entry from its credential values (field → value). Exposed for the
// unit tests. `refresh_token` overrides the configured one (a rotated token).
result<std::unique_ptr<token_mint::token_call>> build_call(const token_entry& e,
                                                           const std::vector<std::pair<std::string, std::string>>& values,
                                                           const std::vector<std::pair<std::string, std::string>>& headers,
                                                           const secrets::value_ptr& refresh_token);

}  // namespace iron::transforms::oauth_token
