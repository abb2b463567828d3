#pragma once
// AWS Signature Version 4 (AWS4-HMAC-SHA256), header form: the canonical request, the string to
// sign, the derived signing key and the Authorization header, as AWS documents them and as
// botocore computes them for services other than S3 (path segments normalised and URI-encoded
// once more; query parameters decoded, RFC 3986-encoded and sorted; header values trimmed with
// inner runs of spaces collapsed). Used by the AWS secret stores and meant for the aws_auth
// transform. No I/O; the secret key only ever feeds the HMAC chain.
#include <chrono>
#include <string>
#include <string_view>

#include "core/headers.hpp"

namespace iron::aws {

struct credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // "" for long-term keys
};

struct request_to_sign {
    std::string method;
    std::string path = "/";  // as sent on the wire
    std::string query;       // as sent, without '?'
    core::header_list headers;  // must hold Host; every header listed here is signed
    std::string payload_hash;   // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct scope {
    std::string region;
    std::string service;
};

// "20150830T123600Z" and "20150830" for a time.
std::string amz_date(std::chrono::system_clock::time_point t);
std::string hex_sha256(std::string_view data);

// The pieces, public for the unit tests and for a verifier.
std::string canonical_uri(std::string_view path);
std::string canonical_query(std::string_view query);
// "name:value\n…" and "name;name…" over the headers, lower-cased and sorted.
std::pair<std::string, std::string> canonical_headers(const core::header_list& headers);
std::string canonical_request(const request_to_sign& req);
std::string string_to_sign(std::string_view canonical, std::string_view amzdate, std::string_view credential_scope);
std::string signing_key(std::string_view secret_access_key, std::string_view date, const scope& s);

// Signs `req` in place: adds X-Amz-Date, X-Amz-Security-Token (with a session token) and
// Authorization. Headers already named X-Amz-Date / X-Amz-Security-Token / Authorization are replaced.
void sign(request_to_sign& req, const credentials& creds, const scope& s, std::chrono::system_clock::time_point now);

}  // namespace iron::aws
