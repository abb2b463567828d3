#pragma once
// JSON Web Token pieces the proxy signs itself (OpenSSL): the RS256 assertions of Google service
// accounts (gcp_sm, gcp_auth, gcp_id_token) and of the OAuth2 JWT-bearer grant (oauth_token).
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace iron::crypto {

// An RS256 JWT over `claims_json` signed with a PEM private key; `key_id` (may be empty) becomes
// the header's `kid`. Errors never quote the key.
result<std::string> sign_jwt_rs256(std::string_view claims_json, std::string_view pem_key, std::string_view key_id);

// base64url without padding (JWT segments).
std::string base64url(std::string_view data);
// Its inverse (padding optional); "" for input that is not base64url.
std::string base64url_decode(std::string_view data);

// The decoded payload (claims JSON text) of a JWT, unverified; "" when it is not a JWT.
std::string jwt_payload(std::string_view jwt);

}  // namespace iron::crypto
