#pragma once
// What the token-minting transforms answer themselves. A workload's SDK that fetches its own token
// from a token endpoint the proxy mints for (a configured oauth_token endpoint, Google's token and
// metadata endpoints) gets a placeholder token instead of reaching the endpoint: the real token is
// added by the proxy on the API request, so the workload never holds it.
#include <string>
#include <string_view>

#include "pipeline/exchange.hpp"
#include "pipeline/transform.hpp"

namespace iron::token_mint {

inline constexpr std::string_view stub_access_token = "iron-proxy-stub-token";

// 200 {"access_token":"iron-proxy-stub-token","expires_in":3600,"token_type":"Bearer"}, annotated
// `stubbed: oauth2_token_endpoint`.
pipeline::verdict access_token_stub(pipeline::exchange& ex);

// A response the transform makes (stub or reject) with a JSON / plain-text body.
pipeline::verdict made_response(pipeline::verdict v, std::string_view content_type, std::string body);

// Sets `header` (in canonical form, as the Go proxy writes it) to prefix + token, replacing what the
// client sent, and annotates `injected: ["header:<Canonical-Name>"]`.
void inject(pipeline::exchange& ex, const std::string& header, std::string_view prefix, const std::string& token);

}  // namespace iron::token_mint
