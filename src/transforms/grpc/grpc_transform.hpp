#pragma once
// The `grpc` transform: hands each request (before any dial) and each response (before the client
// sees it) whose rules match to the operator's transform.v1.TransformService, and does what it
// answers: CONTINUE with modified_request / modified_response merged in (apply.hpp), or REJECT
// with the service's response (absent or status 0: 403). The service's annotations go into the
// trace. Bodies are sent only when asked (send_request_body / send_response_body) and only when
// whole: a body over the proxy's cap is not sent (annotated), never cut short.
//
// Unlike the Go proxy, every call has a deadline (`timeout`, 5s) and a failed call — the service
// unreachable, too slow, refusing TLS, not implementing the method — follows `failure_mode`: deny
// (the default) answers 502 and audits why; allow lets the exchange go on, the error in the trace.
// The calls are awaited on the worker's event loop, never blocking its thread; a client that leaves
// while a call is out has it cancelled at once (the service sees the cancellation). A failure let
// pass by failure_mode: allow keeps its error in the trace and counts in
// iron_proxy_transform_errors_total.
//
// Config (the Go proxy's keys): name (required; the trace name), target (required; a gRPC target
// string), tls {enabled, ca_cert, cert, key}, send_request_body, send_response_body, rules (empty:
// every request); and timeout, failure_mode (deny|allow).
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "transforms/grpc/channel.hpp"

namespace iron::transforms::grpcsvc {

enum class failure_mode { deny, allow };

struct grpc_settings {
    std::string name;
    std::string target;
    channel_tls tls;
    bool send_request_body = false;
    bool send_response_body = false;
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);
    failure_mode on_failure = failure_mode::deny;
};

class grpc_transform final : public pipeline::transform {
public:
    grpc_transform(grpc_settings s, std::vector<pipeline::host_rule> rules);

    static result<std::unique_ptr<grpc_transform>> from_config(const YAML::Node& config, const config::yaml_ctx& ctx);

    std::string_view name() const override { return settings_.name; }
    // Reached only if the request came to match after the pipeline chose not to await (an earlier
    // transform rewrote the path): fail closed rather than call the service synchronously.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    bool awaits_request(const pipeline::exchange& ex) const override { return applies(ex); }
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    pipeline::verdict on_response(pipeline::exchange& ex) const override;
    bool awaits_response(const pipeline::exchange& ex) const override { return applies(ex); }
    boost::asio::awaitable<pipeline::verdict> on_response_async(pipeline::exchange& ex) const override;
    bool wants_request_body(const pipeline::exchange& ex) const override {
        return settings_.send_request_body && applies(ex);
    }
    bool wants_response_body(const pipeline::exchange& ex) const override {
        return settings_.send_response_body && applies(ex);
    }
    // It shows headers to a service outside the proxy: it belongs before any secret swap.
    pipeline::ordering ordering_needs() const override {
        pipeline::ordering need;
        need.must_run_before_secrets = true;
        return need;
    }

    const grpc_settings& settings() const { return settings_; }

private:
    // No rules: every request, as in the Go proxy.
    bool applies(const pipeline::exchange& ex) const { return all_requests_ || rules_.matches_any(ex); }
    pipeline::verdict failed(pipeline::exchange& ex, const ::grpc::Status& status) const;
    pipeline::verdict cancelled(pipeline::exchange& ex) const;
    pipeline::verdict after_request_call(pipeline::exchange& ex, const v1::TransformRequestResponse& reply) const;
    pipeline::verdict after_response_call(pipeline::exchange& ex, const v1::TransformResponseResponse& reply) const;

    grpc_settings settings_;
    bool all_requests_;  // before rules_: set from the rules before they move in
    pipeline::rule_set rules_;
    std::unique_ptr<service_channel> channel_;
};

}  // namespace iron::transforms::grpcsvc
