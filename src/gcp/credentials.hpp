#pragma once
// Google credentials for the calls the proxy makes itself (the gcp_sm secret store, the gcp_auth and
// gcp_id_token transforms): Application Default Credentials from a JSON file — a service-account key
// (a signed JWT exchanged at its token_uri, RFC 7523) or an authorized_user file (a refresh
// token) — turned into an OAuth2 access token request. No I/O here: the caller posts the form.
#include <chrono>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "crypto/jwt.hpp"

namespace iron::gcp {

struct adc_file {
    std::string type;  // "service_account" | "authorized_user"
    std::string client_email, private_key, private_key_id;  // service_account
    std::string client_id, client_secret, refresh_token;     // authorized_user
    std::string token_uri = "https://oauth2.googleapis.com/token";
    ~adc_file();  // wipes the key material
};

// Parses the JSON text of a credentials file. Errors never quote it.
result<adc_file> parse_adc(std::string_view json_text);

// The application/x-www-form-urlencoded body of the token request for `scope`.
result<std::string> token_request_body(const adc_file& creds, std::string_view scope,
                                       std::chrono::system_clock::time_point now);

// What a service-account assertion claims besides iss, aud (the token_uri), iat and exp.
struct assertion_claims {
    std::string scope;            // space-separated; omitted when empty (an ID-token request)
    std::string subject;          // `sub`: the Workspace user to act as (domain-wide delegation)
    std::string target_audience;  // an ID-token request: the `aud` the Google-signed token will carry
};

// The form body exchanging a service account's signed assertion (RFC 7523) at its token_uri.
result<std::string> assertion_request_body(const adc_file& creds, const assertion_claims& claims,
                                           std::chrono::system_clock::time_point now);

using crypto::base64url;
using crypto::sign_jwt_rs256;

}  // namespace iron::gcp
