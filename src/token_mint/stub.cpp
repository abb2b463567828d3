#include "token_mint/stub.hpp"

#include "core/header_name.hpp"

#include <boost/json/array.hpp>
#include <openssl/crypto.h>

namespace iron::token_mint {

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
    const std::string name = core::canonical_header_name(header);
    ex.note_injected(token);
    ex.note_injected(value);
    ex.request_headers.set(name, std::move(value));
    boost::json::array injected;
    injected.emplace_back("header:" + name);
    ex.note("injected", std::move(injected));
}

}  // namespace iron::token_mint
