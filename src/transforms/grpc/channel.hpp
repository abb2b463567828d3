#pragma once
// The grpc transform's connection to the operator's transform.v1.TransformService: one gRPC
// channel per transform (shared by every worker thread, connected lazily, closed when a reload
// replaces the pipeline), and the two unary calls as awaitables. A call runs on gRPC's own threads
// (the callback API); its completion is posted back to the calling worker's executor, so the
// worker serves other connections meanwhile and the exchange resumes where it was. Every call has
// a deadline: a hung or dead service costs at most `timeout`.
//
// The service is the operator's, so its address is dialled as configured (upstream_deny_cidrs do
// not apply: a policy sidecar on localhost is the normal deployment) — and only by this client:
// workload requests never reach it through the proxy.
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include "core/result.hpp"
#include "pipeline/exchange.hpp"
#include "transform/v1/transform.grpc.pb.h"

namespace iron::transforms::grpcsvc {

namespace v1 = ::transform::v1;

// TLS to the service: off (plaintext), or verified against ca_pem (empty: the system roots), with
// a client certificate when cert_pem and key_pem are set (mTLS).
struct channel_tls {
    bool enabled = false;
    std::string ca_pem;
    std::string cert_pem;
    std::string key_pem;
};

template <class Reply>
struct call_outcome {
    ::grpc::Status status;
    Reply reply;
};

class service_channel {
public:
    // Creates the channel (no connection yet: gRPC connects on the first call and reconnects by
    // itself). `target` is a gRPC target string: host:port, dns:///host:port, unix:/path.
    static std::unique_ptr<service_channel> create(const std::string& target, const channel_tls& tls);

    // `watch` (may be null): the exchange's client watch; the client's leaving cancels the call at
    // once (gRPC then completes it as CANCELLED, and the service sees the cancellation).
    boost::asio::awaitable<call_outcome<::transform::v1::TransformRequestResponse>> transform_request(
        ::transform::v1::TransformRequestRequest request, std::chrono::nanoseconds timeout,
        std::shared_ptr<pipeline::client_watch> watch) const;
    boost::asio::awaitable<call_outcome<::transform::v1::TransformResponseResponse>> transform_response(
        ::transform::v1::TransformResponseRequest request, std::chrono::nanoseconds timeout,
        std::shared_ptr<pipeline::client_watch> watch) const;

private:
    explicit service_channel(std::shared_ptr<::grpc::Channel> channel);

    std::shared_ptr<::grpc::Channel> channel_;
    std::unique_ptr<::transform::v1::TransformService::Stub> stub_;
};

// Shutdown, before the workers' event loops stop: cancels every call still out and waits (at most
// `wait`) until their completions were handed to those loops, so no gRPC thread touches a loop
// after it is gone.
void cancel_calls_in_flight(std::chrono::milliseconds wait);

// A failed call's status in a few words for the trace and the audit record ("deadline exceeded
// after 5s", "unavailable: failed to connect …"): the code's name and gRPC's message.
std::string describe(const ::grpc::Status& status, std::chrono::nanoseconds timeout);
// The status code's name in words ("deadline exceeded", "unavailable", …).
const char* code_name(::grpc::StatusCode code);

}  // namespace iron::transforms::grpcsvc
