#include "crypto/jwt.hpp"

#include <memory>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace iron::crypto {

namespace json = boost::json;

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

std::string base64url_decode(std::string_view data) {
    std::string b64(data);
    for (char& c : b64) {
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
        else if (c == '+' || c == '/' || c == '=') return {};
    }
    while (b64.size() % 4 != 0) b64 += '=';
    std::string out(b64.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                                  static_cast<int>(b64.size()));
    if (n < 0) return {};
    std::size_t len = static_cast<std::size_t>(n);
    for (std::size_t i = b64.size(); i > 0 && b64[i - 1] == '=' && len > 0; --i) --len;
    out.resize(len);
    return out;
}

std::string jwt_payload(std::string_view jwt) {
    const auto first = jwt.find('.');
    if (first == std::string_view::npos) return {};
    const auto second = jwt.find('.', first + 1);
    if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) return {};
    return base64url_decode(jwt.substr(first + 1, second - first - 1));
}

}  // namespace iron::crypto
