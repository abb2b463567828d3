#pragma once
// Google credentials for the calls the proxy makes itself (the gcp_sm secret store now; meant for
// gcp_auth later): Application Default Credentials from a JSON file — a service-account key
// (a signed JWT exchanged at its token_uri, RFC 7523) or an authorized_user file (a refresh
// token) — turned into an OAuth2 access token request. No I/O here: the caller posts the form.
#include <chrono>
#include <string>
#include <string_view>

#include "core/result.hpp"

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

// An RS256 JWT over `claims_json` signed with a PEM private key (the service-account assertion).
result<std::string> sign_jwt_rs256(std::string_view claims_json, std::string_view pem_key, std::string_view key_id);

// base64url without padding (JWT segments).
std::string base64url(std::string_view data);

}  // namespace iron::gcp
