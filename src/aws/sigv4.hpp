#pragma once
// AWS Signature Version 4 (AWS4-HMAC-SHA256), in both forms — the Authorization header and the
// presigned URL (X-Amz-* query parameters): the canonical request, the string to sign, the derived
// signing key, as AWS documents them and as botocore computes them (path segments normalised and
// URI-encoded once more, except for S3, which signs the path as sent; query parameters decoded,
// RFC 3986-encoded and sorted; header values trimmed with inner runs of spaces collapsed). Used by
// the AWS secret stores, the credential chain's STS call and the aws_auth transform. No I/O; the
// secret key only ever feeds the HMAC chain.
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
    // S3 signs the path exactly as sent (no dot-segment removal, no second encoding); every other
    // service signs it normalised and encoded once more.
    bool path_as_sent = false;
};

inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";

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

// Presigned-URL form: every X-Amz-* authentication parameter already in req.query is dropped, the
// new ones (Algorithm, Credential, Date, Expires, SignedHeaders, Security-Token with a session
// token) are appended, and X-Amz-Signature last. The signature covers req.headers (at least Host)
// and req.payload_hash: UNSIGNED-PAYLOAD for S3, the body's hash for other services (as botocore
// presigns them).
void presign(request_to_sign& req, const credentials& creds, const scope& s, std::chrono::system_clock::time_point now,
             std::chrono::seconds expires);

// The query's parameters in order, keys and values percent-decoded ("" for a key without '=').
std::vector<std::pair<std::string, std::string>> query_params(std::string_view query);
// `query` without the parameters whose decoded key is one of `keys` (the others kept byte for byte).
std::string remove_query_params(std::string_view query, std::initializer_list<std::string_view> keys);

}  // namespace iron::aws
