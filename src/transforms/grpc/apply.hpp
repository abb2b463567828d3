#pragma once
// What the service's answer does to the exchange: a REJECT's response as the verdict, a
// CONTINUE's modified_request / modified_response merged into the request or the response. Only
// non-empty fields apply (an empty body cannot be expressed, as in the Go proxy); a non-empty
// header map replaces all headers, except the ones the proxy owns: framing (Content-Length,
// Transfer-Encoding) and Host (the one policy saw; a different host is not applied and is
// annotated `host_ignored`). A value that would corrupt the request or the response (a bad
// method, url, header, status; a body the service could not have been shown) is an error, never
// half-applied.
#include <string>

#include "core/result.hpp"
#include "pipeline/exchange.hpp"
#include "pipeline/transform.hpp"
#include "transform/v1/transform.pb.h"

namespace iron::transforms::grpcsvc {

namespace v1 = ::transform::v1;

// REJECT: the service's response (absent or status 0: the default 403), `reason` for the record.
pipeline::verdict reject_with(const v1::HttpResponse* response, std::string reason);

result<void> apply_request_changes(pipeline::exchange& ex, const v1::HttpRequest& changes);
result<void> apply_response_changes(pipeline::exchange& ex, const v1::HttpResponse& changes);

// An origin-form or absolute URL's path and query (the authority, if any, is ignored: a transform
// cannot change where the request goes). The path must start with '/', be printable ASCII,
// percent-decode cleanly and have no "." or ".." segment.
struct url_parts {
    std::string raw_path;
    std::string raw_query;
    std::string decoded_path;
};
result<url_parts> parse_url(std::string_view url);

}  // namespace iron::transforms::grpcsvc
