#pragma once
// The AWS default credential chain, walked as the Go SDK walks it, without an SDK. The first link
// whose settings are present answers, and its failure is the chain's failure (a broken web
// identity set-up is reported, not silently replaced by the instance role):
//   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   2. web identity (EKS IRSA): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN → STS
//      AssumeRoleWithWebIdentity (unsigned; AWS_ROLE_SESSION_NAME; endpoint AWS_ENDPOINT_URL_STS,
//      else AWS_ENDPOINT_URL, else https://sts.<region>.amazonaws.com);
//   3. shared credentials file: AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
//      AWS_PROFILE or "default" (skipped when the file or the profile's keys are absent);
//   4. container endpoint (ECS task role, EKS Pod Identity): AWS_CONTAINER_CREDENTIALS_FULL_URI, or
//      http://169.254.170.2 + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, with Authorization from
//      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read on every call) or AWS_CONTAINER_AUTHORIZATION_TOKEN;
//      a plain-http full URI must name a loopback or the ECS/EKS link-local address (as the SDKs
//      require), so the token never goes to an arbitrary host in clear;
//   5. EC2 instance metadata, IMDSv2 only: PUT /latest/api/token, then the role name and its
//      credentials under /latest/meta-data/iam/security-credentials/, at
//      AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254);
//      AWS_EC2_METADATA_DISABLED=true skips it.
// An empty variable counts as unset. Calls go through outbound::http_client (the endpoints are the
// operator's: no deny-CIDR check), blocking, so they run on a background thread
// (aws/credential_cache.hpp) and never on a worker. Errors name the link and what failed; never a
// key, a token or a reply body.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.hpp"
#include "core/result.hpp"
#include "outbound/http_client.hpp"

namespace iron::aws {

struct timed_credentials {
    credentials creds;
    std::optional<std::chrono::system_clock::time_point> expiration;  // none: long-term keys
    std::string provider;  // the link that answered: environment, web_identity, shared_file, container, imds
};

struct chain_settings {
    std::string region;  // for the STS endpoint ("" → AWS_REGION / AWS_DEFAULT_REGION / global)
};

result<timed_credentials> resolve_default_chain(const chain_settings& settings, outbound::cancel_handle& cancel);

// The pieces, public for the unit tests.
// The [profile] section's aws_access_key_id / aws_secret_access_key / aws_session_token; an error
// when the profile or its keys are missing.
result<credentials> parse_shared_credentials(std::string_view text, std::string_view profile);
// A container endpoint's or IMDS's JSON: AccessKeyId, SecretAccessKey, Token, Expiration (and
// IMDS's Code, which must be "Success" when present).
result<timed_credentials> parse_credentials_json(std::string_view body);
// STS AssumeRoleWithWebIdentityResponse (XML) → its Credentials element.
result<timed_credentials> parse_assume_role_reply(std::string_view xml);
// STS ErrorResponse → "Code: Message" (or the status when the body says nothing usable).
std::string sts_error_text(int status, std::string_view xml);
// "2026-12-06T09:00:00Z", with optional fractional seconds and a Z or ±hh:mm offset.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);
// Is a plain-http container URI's host one the SDKs accept (loopback, 169.254.170.2,
// 169.254.170.23, fd00:ec2::23)?
bool container_host_allowed(std::string_view host);

}  // namespace iron::aws
