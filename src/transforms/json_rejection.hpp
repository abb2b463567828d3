#pragma once
// The rejection the Go proxy's signing transforms (hmac_sign, aws_auth) answer with: the status,
// `Content-Type: application/json`, the body {"error":"<transform>","reason":"<reason>"}, and the
// trace annotation `rejected: <reason>`. `reason` is one of the transform's fixed reason codes,
// never a value from the request or a credential.
#include <string_view>

#include "pipeline/exchange.hpp"
#include "pipeline/transform.hpp"

namespace iron::transforms {

pipeline::verdict json_rejection(pipeline::exchange& ex, int status, std::string_view transform,
                                 std::string_view reason);

}  // namespace iron::transforms
