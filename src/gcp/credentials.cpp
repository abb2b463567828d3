#include "gcp/credentials.hpp"

#include <memory>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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

std::string base64url(std::string_view data) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8) |
                           static_cast<unsigned char>(data[i + 2]);
        for (int s : {18, 12, 6, 0}) out += table[(v >> s) & 63];
    }
    if (i + 1 == data.size()) {
        const unsigned v = static_cast<unsigned char>(data[i]) << 16;
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
    } else if (i + 2 == data.size()) {
        const unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
    }
    return out;
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

result<std::string> sign_jwt_rs256(std::string_view claims_json, std::string_view pem_key, std::string_view key_id) {
    json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
    if (!key_id.empty()) header["kid"] = json::string_view(key_id.data(), key_id.size());
    const std::string signing_input = base64url(json::serialize(header)) + "." + base64url(claims_json);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem_key.data(), static_cast<int>(pem_key.size())), BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
    if (!key) return make_error("private_key is not a PEM private key");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
        return make_error("signing the JWT failed");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
        return make_error("signing the JWT failed");
    sig.resize(len);
    return signing_input + "." + base64url(sig);
}

result<std::string> token_request_body(const adc_file& creds, std::string_view scope, std::chrono::system_clock::time_point now) {
    if (creds.type == "authorized_user") {
        return "grant_type=refresh_token&client_id=" + form_escape(creds.client_id) + "&client_secret=" +
               form_escape(creds.client_secret) + "&refresh_token=" + form_escape(creds.refresh_token);
    }
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    json::object claims{{"iss", creds.client_email}, {"scope", json::string_view(scope.data(), scope.size())},
                        {"aud", creds.token_uri}, {"iat", iat}, {"exp", iat + 3600}};
    auto jwt = sign_jwt_rs256(json::serialize(claims), creds.private_key, creds.private_key_id);
    if (!jwt) return jwt.err();
    return "grant_type=" + form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + *jwt;
}

}  // namespace iron::gcp
