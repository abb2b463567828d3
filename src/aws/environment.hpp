#pragma once
// What the AWS SDKs read from the environment, for the calls the proxy makes itself (secret
// stores now, the aws_auth transform later): the region, the service endpoint and the
// credentials. Read when a call is made (on a fetch thread), never at build.
//
// Endpoint, as the SDKs resolve it: AWS_ENDPOINT_URL_<SERVICE> (e.g. AWS_ENDPOINT_URL_SSM,
// AWS_ENDPOINT_URL_SECRETS_MANAGER), else AWS_ENDPOINT_URL, else https://<prefix>.<region>.amazonaws.com
// (.amazonaws.com.cn for cn- regions); AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips the variables.
// Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the shared
// credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or
// "default"). Container, IMDS and web-identity credentials are not fetched by this build: the
// error says so.
#include <string>
#include <string_view>

#include "aws/sigv4.hpp"
#include "core/result.hpp"

namespace iron::aws {

// `configured` (the source's `region:`) wins, then AWS_REGION, then AWS_DEFAULT_REGION.
result<std::string> resolve_region(std::string_view configured);

// `env_suffix` "SECRETS_MANAGER", `host_prefix` "secretsmanager".
std::string resolve_endpoint(std::string_view env_suffix, std::string_view host_prefix, std::string_view region);

result<credentials> default_credentials();

}  // namespace iron::aws
