#pragma once
// What the workload's own SigV4 signature says, read from the request as it arrived: the header
// form (Authorization: AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=…, Signature=…) or the presigned-URL form (X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-SignedHeaders, X-Amz-Expires query parameters). Only the scope and the list of signed
// headers matter: the signature itself is made with the workload's placeholder key and is
// dropped. Region and service must be plain tokens (letters, digits, '-', '_', '.') since they go
// into the new Authorization header and credential scope.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/headers.hpp"

namespace iron::transforms::aws_auth {

struct client_signature {
    bool presigned = false;
    std::string region;
    std::string service;
    std::vector<std::string> signed_headers;  // lower-case, as listed
    std::chrono::seconds expires{900};        // presigned only: X-Amz-Expires (1 s … 7 days)
};

// nullopt when the request carries no readable SigV4 signature in either form.
std::optional<client_signature> read_client_signature(const core::header_list& headers, std::string_view raw_query);

// "AK/20260101/us-east-1/s3/aws4_request" → region and service; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> parse_credential_scope(std::string_view credential);

}  // namespace iron::transforms::aws_auth
