#pragma once
// Minting Google tokens for gcp_auth (OAuth2 access tokens) and gcp_id_token (Google-signed OIDC ID
// tokens), on the token-mint core (token_mint/). Credentials are a service-account key — from a
// file (keyfile_path) or any secret source (keyfile) — signed into an RS256 assertion for the key's
// token_uri (gcp/credentials), or, for gcp_auth's `credentials_provider: {type:
// workload_identity}`, Application Default Credentials found when a token is needed:
// $GOOGLE_APPLICATION_CREDENTIALS (service_account or authorized_user), then gcloud's
// application_default_credentials.json, then the GCE/GKE metadata server
// ($GCE_METADATA_HOST, else metadata.google.internal).
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/yaml_fwd.hpp"
#include "secrets/source.hpp"
#include "token_mint/cache.hpp"
#include "token_mint/endpoint.hpp"

namespace iron::transforms::gcp {

// Where the credentials come from: a keyfile source, or (null) Application Default Credentials.
struct google_credentials {
    std::shared_ptr<secrets::source> keyfile;

    // The keyfile JSON (null for ADC), or why it cannot be read.
    result<secrets::value_ptr> keyfile_value() const;
    // What a cached token is keyed by: the keyfile's digest (a rotated key mints anew), or "adc".
    static std::string fingerprint(const secrets::value_ptr& keyfile);
};

// The service-account key a config names: the `keyfile` secret source when given (`keyfile_node`
// not absent), else the file at `keyfile_path`, read when the pipeline is built and on reload, as a
// file secret: an unreadable keyfile fails the requests that need a token, not the start (the Go
// proxy reads it lazily).
result<std::shared_ptr<secrets::source>> keyfile_source(const YAML::Node& keyfile_node, const config::yaml_ctx& ctx,
                                                        const std::string& keyfile_path);

// An access token for `scopes` (acting as `subject` when set: domain-wide delegation).
boost::asio::awaitable<token_mint::mint_outcome> fetch_access_token(token_mint::endpoint_clients& clients,
                                                                    secrets::value_ptr keyfile,
                                                                    std::vector<std::string> scopes,
                                                                    std::string subject);

// A Google-signed ID token whose `aud` is `audience` (the keyfile's JWT grant with target_audience).
boost::asio::awaitable<token_mint::mint_outcome> fetch_id_token(token_mint::endpoint_clients& clients,
                                                                secrets::value_ptr keyfile, std::string audience);

// The metadata server's base URL: http://$GCE_METADATA_HOST, else http://metadata.google.internal.
std::string metadata_base_url();

}  // namespace iron::transforms::gcp
