#pragma once
// What the AWS SDKs read from the environment, for the calls the proxy makes itself (secret
// stores, the credential chain's STS call): the region and the service endpoint. Read when a call
// is made (on a fetch thread), never at build. Credentials: aws/credential_chain.hpp.
//
// Endpoint, as the SDKs resolve it: AWS_ENDPOINT_URL_<SERVICE> (e.g. AWS_ENDPOINT_URL_SSM,
// AWS_ENDPOINT_URL_SECRETS_MANAGER), else AWS_ENDPOINT_URL, else https://<prefix>.<region>.amazonaws.com
// (.amazonaws.com.cn for cn- regions); AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips the variables.
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace iron::aws {

// `configured` (the source's `region:`) wins, then AWS_REGION, then AWS_DEFAULT_REGION.
result<std::string> resolve_region(std::string_view configured);

// `env_suffix` "SECRETS_MANAGER", `host_prefix` "secretsmanager".
std::string resolve_endpoint(std::string_view env_suffix, std::string_view host_prefix, std::string_view region);

}  // namespace iron::aws
