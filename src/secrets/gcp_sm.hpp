#pragma once
// {type: gcp_sm, secret: "projects/P/secrets/S[/versions/V]", credentials_file?, endpoint?, ttl?,
//  failure_ttl?, json_key?}: a Google Secret Manager secret version (V defaults to "latest"), read
// with GET <endpoint>/v1/<secret>/versions/<V>:access and the payload's base64 data decoded.
// Credentials: the JSON file named by credentials_file, else $GOOGLE_APPLICATION_CREDENTIALS — a
// service-account key (a signed JWT exchanged at its token_uri) or an authorized_user file; the
// access token is cached until shortly before it expires. The metadata server is not used.
// endpoint (default https://secretmanager.googleapis.com) lets a private endpoint or a local
// test server stand in. Display name: the secret's resource name.
#include <memory>
#include <string>

#include "core/result.hpp"
#include "secrets/remote_source.hpp"

namespace iron::secrets {

// "projects/p/secrets/s" → "projects/p/secrets/s/versions/latest"; errors for any other shape.
result<std::string> gcp_secret_version(std::string_view secret);

std::unique_ptr<store_fetcher> make_gcp_sm_fetcher(std::string version_name, std::string credentials_file,
                                                   std::string endpoint);

}  // namespace iron::secrets
