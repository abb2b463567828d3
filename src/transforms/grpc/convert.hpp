#pragma once
// The exchange as transform.v1 messages, and the service's answers back: what the grpc transform
// sends (context, request, response; bodies only when asked and only when whole) and how header
// maps and annotations translate.
#include <string>

#include "core/headers.hpp"
#include "core/result.hpp"
#include "pipeline/exchange.hpp"
#include "transform/v1/transform.pb.h"

namespace iron::transforms::grpcsvc {

namespace v1 = ::transform::v1;

// sni, and for a request inside a CONNECT / SOCKS5 tunnel its target and the tunnel check's traces.
void fill_context(const pipeline::exchange& ex, v1::TransformContext& out);
// method, origin-form url (/path?query), headers (Host is the `host` field), host, remote_addr;
// the body when `with_body` and the proxy buffered it whole.
void fill_request(const pipeline::exchange& ex, bool with_body, v1::HttpRequest& out);
// status_code, headers; the body when `with_body` and the proxy buffered it whole.
void fill_response(const pipeline::exchange& ex, bool with_body, v1::HttpResponse& out);

// A header list as the proto's map: one entry per name (the first spelling seen), values in order.
void headers_to_map(const core::header_list& headers, google::protobuf::Map<std::string, v1::HeaderValues>& out);
// The proto's map as a header list; a name that is not a token or a value with CR, LF or NUL is an
// error (it could split the head it goes into).
result<core::header_list> headers_from_map(const google::protobuf::Map<std::string, v1::HeaderValues>& in);

// The service's annotations into the running transform's trace.
void note_annotations(pipeline::exchange& ex, const google::protobuf::Map<std::string, std::string>& annotations);

}  // namespace iron::transforms::grpcsvc
