#pragma once
// The `gcp_auth` transform: mints Google OAuth2 access tokens and sets `Authorization: Bearer …`
// on the requests its rules match (no rules: every request), so the workload never holds the
// service-account key. Config (the Go proxy's keys): exactly one of keyfile_path, keyfile (a
// secret source holding the key JSON) and credentials_provider: {type: workload_identity}
// (Application Default Credentials, google_tokens.hpp); scopes (at least one); subject (domain-wide
// delegation, keyfiles only); rules.
//
// Before its rules it stubs the Google token endpoints an SDK would call (google_stubs.hpp) with
// the placeholder access token (`stubbed: oauth2_token_endpoint`). Mint failure: 403, empty body,
// annotations error and rejected: token_unavailable. Success: service_account (when known) and
// injected: ["header:Authorization"]. Tokens are cached and refreshed by the token-mint core.
#include <memory>
#include <string>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "token_mint/cache.hpp"
#include "token_mint/endpoint.hpp"
#include "transforms/gcp/google_stubs.hpp"
#include "transforms/gcp/google_tokens.hpp"

namespace iron::transforms::gcp {

struct gcp_auth_settings {
    google_credentials credentials;
    std::vector<std::string> scopes;
    std::string subject;
};

class gcp_auth_transform final : public pipeline::transform {
public:
    gcp_auth_transform(gcp_auth_settings s, std::vector<pipeline::host_rule> rules);

    static result<std::unique_ptr<gcp_auth_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "gcp_auth"; }
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    // The stub tells an ID-token request (left to gcp_id_token) from an access-token one by its body.
    bool wants_request_body(const pipeline::exchange& ex) const override { return is_google_token_endpoint(ex); }
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.swaps_secrets = true;
        return need;
    }
    void refresh() const override;

private:
    bool applies(const pipeline::exchange& ex) const { return rules_.empty() || rules_.matches_any(ex); }
    std::optional<pipeline::verdict> stub(pipeline::exchange& ex) const;
    pipeline::verdict settle(pipeline::exchange& ex, const token_mint::mint_outcome& got) const;

    gcp_auth_settings settings_;
    pipeline::rule_set rules_;
    mutable token_mint::token_cache cache_;
    mutable token_mint::endpoint_clients clients_;
};

}  // namespace iron::transforms::gcp
