#pragma once
// The `hmac_sign` transform: signs requests for APIs that authenticate with an HMAC over a
// venue-defined message (FalconX, Coinbase Prime, …). For a request its rules match it renders
// `signature.message` from the request (.Timestamp .Method .Path .PathWithQuery .Query .Host
// .Body), computes HMAC-<algorithm> keyed with the `secret` credential, and sets each configured
// header (exact spelling, replacing any value the client sent) from its template
// (.Timestamp .Signature .Credentials.<name>). The same timestamp goes into message and headers.
//
// The signature covers exactly what the origin receives: .Path is the path as sent on the wire
// (the Go proxy signed the decoded path while forwarding the encoded one), and a body that is not
// whole — larger than proxy.max_request_body_bytes, or of unknown length (chunked) unless
// allow_chunked_body — is refused rather than signed short.
//
// Rejections answer {"error":"hmac_sign","reason":"<reason>"} (application/json):
//   413 body_truncated (annotations content_length, buffered_length), 400 chunked_body_not_allowed,
//   400 body_missing (a body the proxy did not buffer for signing; content_length),
//   502 credential_unavailable (credential, error), 500 message_template_failed (error),
//   500 key_decode_failed (error), 500 header_template_failed (header, error);
// every one also annotates `rejected: <reason>`. Success: `injected: ["header:<Name>", …]`.
// Credential values never reach an annotation, a log line or an error.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "secrets/source.hpp"
#include "transforms/hmac_sign/go_template.hpp"

namespace iron::transforms::hmac_sign {

enum class timestamp_format { unix_seconds, unix_millis, unix_nanos, rfc3339 };
enum class digest { sha256, sha512, sha1 };
enum class key_encoding { raw, base64, hex };
enum class output_encoding { base64, hex };

struct header_spec {
    std::string name;  // exact spelling from the config
    go_template value;
};

struct hmac_settings {
    timestamp_format timestamp = timestamp_format::unix_seconds;
    digest algorithm = digest::sha256;
    key_encoding key = key_encoding::raw;
    output_encoding output = output_encoding::base64;
    go_template message;
    std::vector<header_spec> headers;
    // name → source, sorted by name (the `secret` entry is the HMAC key).
    std::vector<std::pair<std::string, std::shared_ptr<secrets::source>>> credentials;
    bool allow_chunked_body = false;
};

class hmac_sign_transform final : public pipeline::transform {
public:
    hmac_sign_transform(hmac_settings s, std::vector<pipeline::host_rule> rules);

    static result<std::unique_ptr<hmac_sign_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return "hmac_sign"; }
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    // A credential from a remote store not fetched yet: the request waits for its first fetch on
    // the worker's event loop (never blocking the thread), then is signed as usual.
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override { return rules_.matches_any(ex); }
    // Puts real credentials (the signature, and any .Credentials header) into the request.
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.swaps_secrets = true;
        return need;
    }
    void refresh() const override;

    const hmac_settings& settings() const { return settings_; }

private:
    hmac_settings settings_;
    pipeline::rule_set rules_;
    std::vector<const secrets::source*> sources_;  // settings_.credentials' sources
};

// The pieces, exposed for the unit tests.
std::string format_timestamp(timestamp_format f, std::chrono::system_clock::time_point now);
// Decodes the key per its encoding; errors say where the input is bad, never what it holds.
result<std::string> decode_key(key_encoding e, std::string_view text);
// HMAC-<d>(key, message), encoded.
std::string sign(digest d, std::string_view key, std::string_view message, output_encoding out);

}  // namespace iron::transforms::hmac_sign
