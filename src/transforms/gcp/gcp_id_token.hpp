#pragma once
// The `gcp_id_token` transform: mints Google-signed OIDC ID tokens for `audience` (private Cloud
// Run, IAP, …) from a service-account key and sets `<header>: Bearer …` on the requests its rules
// match. Config (the Go proxy's keys): exactly one of keyfile_path and keyfile (a secret source),
// audience (required), header (authorization, the default, or x-serverless-authorization), rules
// (at least one).
//
// Before its rules it stubs an SDK's own ID-token fetches (google_stubs.hpp) with a fake token for
// the audience asked (`stubbed: gcp_metadata_identity_endpoint` / `gcp_oauth2_id_token_endpoint`,
// `audience`). Mint failure: 403, empty body, annotations error (invalid_grant,
// token_endpoint_http_<code>, mint_failed) and rejected: token_unavailable. Success:
// service_account, audience, injected. Tokens are cached (until shortly before the `exp` the ID
// token carries) by the token-mint core.
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

struct gcp_id_token_settings {
    google_credentials credentials;  // always a keyfile
    std::string audience;
    std::string header = "Authorization";
};

class gcp_id_token_transform final : public pipeline::transform {
public:
    gcp_id_token_transform(gcp_id_token_settings s, std::vector<pipeline::host_rule> rules);

    static result<std::unique_ptr<gcp_id_token_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "gcp_id_token"; }
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override { return is_google_token_endpoint(ex); }
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.swaps_secrets = true;
        return need;
    }
    void refresh() const override;

private:
    std::optional<pipeline::verdict> stub(pipeline::exchange& ex) const;
    pipeline::verdict settle(pipeline::exchange& ex, const token_mint::mint_outcome& got) const;

    gcp_id_token_settings settings_;
    pipeline::rule_set rules_;
    mutable token_mint::token_cache cache_;
    mutable token_mint::endpoint_clients clients_;
};

}  // namespace iron::transforms::gcp
