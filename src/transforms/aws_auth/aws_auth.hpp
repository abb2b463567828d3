#pragma once
// The `aws_auth` transform: the workload signs its AWS requests (SigV4) with a placeholder key;
// for a request its rules match, the proxy checks the signature's scope and signs the request
// again with the real credentials, so the workload never holds them.
//
// * Reads region and service from the client's signature — the Authorization header
//   (AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request, …) or a presigned URL's
//   X-Amz-Credential — and gates them on allowed_regions / allowed_services (empty: any).
// * Header form: drops Authorization, X-Amz-Date, X-Amz-Security-Token and X-Amz-Content-Sha256,
//   sets X-Amz-Content-Sha256 to the SHA-256 of the body (buffered up to
//   proxy.max_request_body_bytes), or UNSIGNED-PAYLOAD with unsigned_payload (no buffering), and
//   signs Host, the headers the client signed, and the X-Amz-* it set. A client that streams an
//   unsigned body with trailing checksums (X-Amz-Content-Sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER)
//   keeps that value; a body signed chunk by chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD…) is refused:
//   each chunk's signature chains from the client's, which the proxy replaces.
// * Presigned form: the X-Amz-* query parameters are replaced by new ones (same expiry, a new
//   date, the real access key, the session token if any); S3's cover UNSIGNED-PAYLOAD (no
//   buffering), other services' the body's hash, as botocore presigns them.
// * S3 signs the path as sent; other services the normalised, doubly encoded path (as the SDKs).
// * Credentials: access_key_id + secret_access_key (secret sources), or credentials_provider
//   {type: workload_identity, region?}: the default chain of aws/credential_chain.hpp, cached and
//   refreshed before expiry (aws/credential_cache.hpp).
// * CONNECT always passes (the tunnel's requests are signed inside it).
//
// Rejections answer {"error":"aws_auth","reason":"<reason>"} (application/json) and annotate
// `rejected`: 400 missing_sigv4, 403 region_not_allowed, 403 service_not_allowed,
// 502 credential_unavailable (credential, error), 413 body_truncated, 400 chunked_body_not_allowed,
// 400 body_missing, 400 streaming_payload_not_supported. Success annotates injected: true, and
// every matched request its service and region. No credential ever reaches an annotation or a log.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aws/credential_cache.hpp"
#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "secrets/source.hpp"

namespace iron::transforms::aws_auth {

struct aws_auth_settings {
    // Static keys (both set), or the workload-identity chain (workload_identity).
    std::shared_ptr<secrets::source> access_key_id;
    std::shared_ptr<secrets::source> secret_access_key;
    bool workload_identity = false;
    std::string provider_region;  // credentials_provider.region: the STS endpoint's region
    std::vector<std::string> allowed_regions;
    std::vector<std::string> allowed_services;
    bool unsigned_payload = false;
    bool allow_chunked_body = false;
};

class aws_auth_transform final : public pipeline::transform {
public:
    aws_auth_transform(aws_auth_settings s, std::vector<pipeline::host_rule> rules);

    static result<std::unique_ptr<aws_auth_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "aws_auth"; }
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    // Credentials not there yet (a remote store's first fetch, the chain's first resolution or a
    // refresh after expiry): the request waits on the worker's event loop, then is signed as usual.
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override;
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.swaps_secrets = true;
        return need;
    }
    void refresh() const override;

    const aws_auth_settings& settings() const { return settings_; }

private:
    result<aws::credentials> credentials_now() const;

    aws_auth_settings settings_;
    pipeline::rule_set rules_;
    std::vector<const secrets::source*> sources_;  // the static keys' sources
    std::unique_ptr<aws::credential_cache> chain_;  // workload identity only
};

}  // namespace iron::transforms::aws_auth
