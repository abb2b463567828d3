#include "token_mint/stub.hpp"

#include <boost/json/array.hpp>
#include <openssl/crypto.h>

namespace iron::token_mint {

std::string canonical_header(std::string_view name) {
    std::string out(name);
    bool upper = true;
    for (char& c : out) {
        if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        upper = c == '-';
    }
    return out;
}

pipeline::verdict made_response(pipeline::verdict v, std::string_view content_type, std::string body) {
    v.headers.set("Content-Type", std::string(content_type));
    v.body = std::move(body);
    return v;
}

pipeline::verdict access_token_stub(pipeline::exchange& ex) {
    ex.note("stubbed", "oauth2_token_endpoint");
    return made_response(pipeline::verdict::stub(200), "application/json",
                         R"({"access_token":")" + std::string(stub_access_token) + R"(","expires_in":3600,"token_type":"Bearer"})");
}

void inject(pipeline::exchange& ex, const std::string& header, std::string_view prefix, const std::string& token) {
    std::string value;
    value.reserve(prefix.size() + token.size());
    value.append(prefix).append(token);
    const std::string name = canonical_header(header);
    ex.note_injected(token);
    ex.note_injected(value);
    ex.request_headers.set(name, std::move(value));
    boost::json::array injected;
    injected.emplace_back("header:" + name);
    ex.note("injected", std::move(injected));
}

}  // namespace iron::token_mint
