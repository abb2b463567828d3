#include "transforms/gcp/google_stubs.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/percent.hpp"
#include "crypto/jwt.hpp"
#include "token_mint/endpoint.hpp"

namespace iron::transforms::gcp {
namespace {

constexpr std::string_view service_accounts_prefix = "/computeMetadata/v1/instance/service-accounts/";

bool is_metadata_host(const pipeline::exchange& ex) {
    return ex.policy_host == "metadata.google.internal" || ex.policy_host == "169.254.169.254";
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string query_param(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (core::percent_decode(pair.substr(0, eq), true) == name)
            return eq == std::string_view::npos ? std::string() : core::percent_decode(pair.substr(eq + 1), true);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

}  // namespace

bool is_google_token_endpoint(const pipeline::exchange& ex) {
    return !ex.is_connect && ex.policy_host == "oauth2.googleapis.com" && ex.path == "/token";
}

bool is_metadata_token_path(const pipeline::exchange& ex) {
    return !ex.is_connect && is_metadata_host(ex) && ex.path.starts_with(service_accounts_prefix) && ends_with(ex.path, "/token");
}

std::optional<std::string> id_token_request_audience(const pipeline::exchange& ex) {
    if (!is_google_token_endpoint(ex) || !ex.request_body.present || !ex.request_body.complete) return std::nullopt;
    const std::string_view body = ex.request_body.data;
    if (token_mint::form_field(body, "grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer") return std::nullopt;
    const std::string claims = crypto::jwt_payload(token_mint::form_field(body, "assertion"));
    boost::system::error_code ec;
    auto doc = boost::json::parse(claims, ec);
    if (ec || !doc.is_object()) return std::nullopt;
    const auto* aud = doc.get_object().if_contains("target_audience");
    if (!aud || !aud->is_string() || aud->get_string().empty()) return std::nullopt;
    return std::string(aud->get_string());
}

std::optional<std::string> metadata_identity_audience(const pipeline::exchange& ex) {
    if (ex.is_connect || !is_metadata_host(ex) || !ex.path.starts_with(service_accounts_prefix) || !ends_with(ex.path, "/identity"))
        return std::nullopt;
    std::string audience = query_param(ex.raw_query, "audience");
    if (audience.empty()) return std::nullopt;
    return audience;
}

std::string fake_id_token(const std::string& audience, std::chrono::system_clock::time_point now) {
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    boost::json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
    boost::json::object claims{{"iss", "https://accounts.google.com"},
                               {"aud", audience.empty() ? std::string("iron-proxy-stub-audience") : audience},
                               {"azp", "iron-proxy-stub"},
                               {"sub", "iron-proxy-stub"},
                               {"email", "stub@iron-proxy.local"},
                               {"email_verified", true},
                               {"iat", iat},
                               {"exp", iat + 3600}};
    return crypto::base64url(boost::json::serialize(header)) + "." + crypto::base64url(boost::json::serialize(claims)) + "." +
           crypto::base64url("stub-signature");
}

}  // namespace iron::transforms::gcp
