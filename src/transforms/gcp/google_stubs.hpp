#pragma once
// The Google endpoints a workload's SDK fetches its own tokens from, answered by the proxy with
// placeholders (the real token is added on the API request). They run before the transforms'
// rules, and only see requests an earlier allowlist let through.
//   gcp_auth:     oauth2.googleapis.com /token (not an ID-token request) and the metadata server's
//                 …/service-accounts/<any>/token → the placeholder access token;
//   gcp_id_token: the metadata server's …/service-accounts/<any>/identity?audience=A → a fake,
//                 unsigned-looking ID token (text/plain), and an ID-token request at
//                 oauth2.googleapis.com /token (a JWT-bearer assertion with target_audience) →
//                 {"id_token": …} (JSON).
// "The metadata server" is metadata.google.internal or 169.254.169.254.
#include <chrono>
#include <optional>
#include <string>

#include "pipeline/exchange.hpp"

namespace iron::transforms::gcp {

bool is_google_token_endpoint(const pipeline::exchange& ex);  // oauth2.googleapis.com /token
bool is_metadata_token_path(const pipeline::exchange& ex);
// The body of a token-endpoint request asks for an ID token: the audience it names.
std::optional<std::string> id_token_request_audience(const pipeline::exchange& ex);
// A metadata identity request: the audience query parameter (nullopt when absent or not one).
std::optional<std::string> metadata_identity_audience(const pipeline::exchange& ex);

// A JWT that looks like a Google ID token for `audience` with a placeholder signature.
std::string fake_id_token(const std::string& audience, std::chrono::system_clock::time_point now);

}  // namespace iron::transforms::gcp
