#include "gcp/credentials.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>

namespace iron::gcp {
namespace {

namespace json = boost::json;

std::string str(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

void wipe(std::string& s) {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

std::string form_escape(std::string_view s) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

}  // namespace

adc_file::~adc_file() {
    wipe(private_key);
    wipe(client_secret);
    wipe(refresh_token);
}

result<adc_file> parse_adc(std::string_view json_text) {
    boost::system::error_code ec;
    json::value doc = json::parse(json_text, ec);
    if (ec || !doc.is_object()) return make_error("credentials file is not a JSON object");
    const auto& o = doc.get_object();
    adc_file f;
    f.type = str(o, "type");
    if (auto uri = str(o, "token_uri"); !uri.empty()) f.token_uri = uri;
    if (f.type == "service_account") {
        f.client_email = str(o, "client_email");
        f.private_key = str(o, "private_key");
        f.private_key_id = str(o, "private_key_id");
        if (f.client_email.empty() || f.private_key.empty())
            return make_error("service account credentials need client_email and private_key");
    } else if (f.type == "authorized_user") {
        f.client_id = str(o, "client_id");
        f.client_secret = str(o, "client_secret");
        f.refresh_token = str(o, "refresh_token");
        if (f.client_id.empty() || f.refresh_token.empty())
            return make_error("authorized_user credentials need client_id and refresh_token");
    } else {
        return make_error("credentials type \"" + f.type + "\" is not supported (service_account or authorized_user)");
    }
    // Wipe the parsed copies of the key material.
    for (const char* k : {"private_key", "client_secret", "refresh_token"})
        if (auto* v = doc.get_object().if_contains(k); v && v->is_string() && !v->get_string().empty())
            OPENSSL_cleanse(v->get_string().data(), v->get_string().size());
    return f;
}

result<std::string> token_request_body(const adc_file& creds, std::string_view scope, std::chrono::system_clock::time_point now) {
    if (creds.type == "authorized_user") {
        return "grant_type=refresh_token&client_id=" + form_escape(creds.client_id) + "&client_secret=" +
               form_escape(creds.client_secret) + "&refresh_token=" + form_escape(creds.refresh_token);
    }
    assertion_claims claims;
    claims.scope = std::string(scope);
    return assertion_request_body(creds, claims, now);
}

result<std::string> assertion_request_body(const adc_file& creds, const assertion_claims& claims,
                                           std::chrono::system_clock::time_point now) {
    if (creds.type != "service_account") return make_error("credentials are not a service account key");
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    json::object body{{"iss", creds.client_email}, {"aud", creds.token_uri}, {"iat", iat}, {"exp", iat + 3600}};
    if (!claims.scope.empty()) body["scope"] = claims.scope;
    if (!claims.subject.empty()) body["sub"] = claims.subject;
    if (!claims.target_audience.empty()) body["target_audience"] = claims.target_audience;
    auto jwt = sign_jwt_rs256(json::serialize(body), creds.private_key, creds.private_key_id);
    if (!jwt) return jwt.err();
    return "grant_type=" + form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + *jwt;
}

}  // namespace iron::gcp
