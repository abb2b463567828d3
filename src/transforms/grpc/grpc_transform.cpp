#include "transforms/grpc/grpc_transform.hpp"

#include "core/log.hpp"
#include "transforms/grpc/apply.hpp"
#include "transforms/grpc/convert.hpp"

namespace iron::transforms::grpcsvc {
namespace {

using pipeline::verdict;

bool rejects(v1::TransformAction action) { return action == v1::TRANSFORM_ACTION_REJECT; }

// A body the transform would send but the proxy holds only in part: the service sees none.
void note_unsent_body(pipeline::exchange& ex, const pipeline::body_buffer& body, const char* key) {
    if (body.present && (!body.complete || body.more_to_read)) ex.note(key, "not sent: over the proxy's body cap");
}

}  // namespace

grpc_transform::grpc_transform(grpc_settings s, std::vector<pipeline::host_rule> rules)
    : settings_(std::move(s)),
      all_requests_(rules.empty()),
      rules_(std::move(rules)),
      channel_(service_channel::create(settings_.target, settings_.tls)) {}

verdict grpc_transform::on_request(pipeline::exchange& ex) const {
    if (!applies(ex)) return verdict::next();
    return verdict::fail("grpc transform " + settings_.name + " was not awaited");
}

verdict grpc_transform::on_response(pipeline::exchange& ex) const {
    if (!applies(ex)) return verdict::next();
    return verdict::fail("grpc transform " + settings_.name + " was not awaited");
}

// The client left while the call was out: it was cancelled, not failed (no error counted); the
// exchange ends as the client's cancel whatever is answered here.
verdict grpc_transform::cancelled(pipeline::exchange& ex) const {
    ex.note("cancelled", "the client left during the call");
    return verdict::next();
}

verdict grpc_transform::failed(pipeline::exchange& ex, const ::grpc::Status& status) const {
    const std::string why = describe(status, settings_.timeout);
    ex.note("error", boost::json::value(why));
    log::warn("grpc transform call failed", {{"name", settings_.name}, {"target", settings_.target}, {"err", why}});
    if (settings_.on_failure == failure_mode::allow) {
        ex.note("failure_mode", "allow");
        return verdict::passed_despite("calling " + settings_.target + ": " + why);
    }
    verdict v = verdict::fail("calling " + settings_.target + ": " + why);
    v.reason = "transform service " + std::string(code_name(status.error_code()));
    return v;
}

verdict grpc_transform::after_request_call(pipeline::exchange& ex, const v1::TransformRequestResponse& reply) const {
    note_annotations(ex, reply.annotations());
    if (rejects(reply.action()))
        return reject_with(reply.has_response() ? &reply.response() : nullptr, "rejected by grpc transform " + settings_.name);
    if (!reply.has_modified_request()) return verdict::next();
    if (auto r = apply_request_changes(ex, reply.modified_request()); !r) return verdict::fail(r.message());
    return verdict::next();
}

verdict grpc_transform::after_response_call(pipeline::exchange& ex, const v1::TransformResponseResponse& reply) const {
    note_annotations(ex, reply.annotations());
    if (rejects(reply.action()))
        return reject_with(reply.has_modified_response() ? &reply.modified_response() : nullptr,
                           "rejected by grpc transform " + settings_.name);
    if (!reply.has_modified_response()) return verdict::next();
    if (auto r = apply_response_changes(ex, reply.modified_response()); !r) return verdict::fail(r.message());
    return verdict::next();
}

boost::asio::awaitable<verdict> grpc_transform::on_request_async(pipeline::exchange& ex) const {
    if (!applies(ex)) co_return verdict::next();
    v1::TransformRequestRequest request;
    fill_context(ex, *request.mutable_context());
    fill_request(ex, settings_.send_request_body, *request.mutable_request());
    if (settings_.send_request_body) note_unsent_body(ex, ex.request_body, "request_body");
    auto outcome = co_await channel_->transform_request(std::move(request), settings_.timeout, ex.watch);
    if (ex.client_left()) co_return cancelled(ex);
    if (!outcome.status.ok()) co_return failed(ex, outcome.status);
    co_return after_request_call(ex, outcome.reply);
}

boost::asio::awaitable<verdict> grpc_transform::on_response_async(pipeline::exchange& ex) const {
    if (!applies(ex)) co_return verdict::next();
    v1::TransformResponseRequest request;
    fill_context(ex, *request.mutable_context());
    fill_request(ex, settings_.send_request_body, *request.mutable_request());
    fill_response(ex, settings_.send_response_body, *request.mutable_response());
    if (settings_.send_response_body) note_unsent_body(ex, ex.response_body, "response_body");
    auto outcome = co_await channel_->transform_response(std::move(request), settings_.timeout, ex.watch);
    if (ex.client_left()) co_return cancelled(ex);
    if (!outcome.status.ok()) co_return failed(ex, outcome.status);
    co_return after_response_call(ex, outcome.reply);
}

}  // namespace iron::transforms::grpcsvc
