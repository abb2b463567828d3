#include "transforms/grpc/channel.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_set>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace iron::transforms::grpcsvc {
namespace {

namespace asio = boost::asio;
namespace v1 = ::transform::v1;

using done_callback = std::function<void(::grpc::Status)>;

// Every call in flight, process-wide: a call's completion is posted to a worker's event loop from
// one of gRPC's threads, so at shutdown the calls are cancelled and their completions posted while
// the workers' loops still exist (cancel_calls_in_flight). Never destroyed: gRPC's threads may
// outlive static destruction.
struct calls_in_flight {
    std::mutex lock;
    std::condition_variable none_left;
    std::unordered_set<::grpc::ClientContext*> calls;
};

calls_in_flight& in_flight() {
    static auto* calls = new calls_in_flight;
    return *calls;
}

void track(::grpc::ClientContext* call) {
    std::lock_guard guard(in_flight().lock);
    in_flight().calls.insert(call);
}

void untrack(::grpc::ClientContext* call) {
    auto& f = in_flight();
    std::lock_guard guard(f.lock);
    f.calls.erase(call);
    if (f.calls.empty()) f.none_left.notify_all();
}

// What a call needs until gRPC's callback ran, whatever happened to the coroutine meanwhile.
template <class Request, class Reply>
struct pending_call {
    ::grpc::ClientContext context;
    Request request;
    Reply reply;
};

// Starts a unary call through `start(context, request, reply, done)` and resumes the awaiting
// coroutine on its own executor with the status. The executor is held as outstanding work until
// then, so the worker's event loop does not run dry while a call is out.
// The client's leaving cancels the call (TryCancel is safe from any thread, and on a call that
// already finished); the hook holds the call, so the context it names is alive.
template <class Call>
void cancel_when_client_leaves(pipeline::client_watch* watch, const std::shared_ptr<Call>& call) {
    if (watch != nullptr) watch->on_client_leaving([call] { call->context.TryCancel(); });
}

template <class Request, class Reply, class Start>
asio::awaitable<call_outcome<Reply>> unary_call(Start start, Request request, std::chrono::nanoseconds timeout,
                                               std::shared_ptr<pipeline::client_watch> watch) {
    auto call = std::make_shared<pending_call<Request, Reply>>();
    call->request = std::move(request);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout));
    auto initiate = [call, &start](auto handler) {
        using handler_type = decltype(handler);
        auto resume_on = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
        auto waiting = std::make_shared<std::optional<handler_type>>(std::move(handler));
        track(&call->context);
        start(&call->context, &call->request, &call->reply, [call, waiting, resume_on](::grpc::Status status) {
            asio::post(resume_on, [waiting, status = std::move(status)]() mutable {
                (**waiting)(std::move(status));
            });
            untrack(&call->context);
        });
    };
    cancel_when_client_leaves(watch.get(), call);
    ::grpc::Status status =
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(::grpc::Status)>(std::move(initiate),
                                                                                               asio::use_awaitable);
    if (watch) watch->on_client_leaving(nullptr);
    co_return call_outcome<Reply>{std::move(status), std::move(call->reply)};
}

std::shared_ptr<::grpc::ChannelCredentials> credentials_for(const channel_tls& tls) {
    if (!tls.enabled) return ::grpc::InsecureChannelCredentials();
    ::grpc::SslCredentialsOptions options;
    options.pem_root_certs = tls.ca_pem;  // empty: gRPC's default roots
    options.pem_private_key = tls.key_pem;
    options.pem_cert_chain = tls.cert_pem;
    return ::grpc::SslCredentials(options);
}

}  // namespace

service_channel::service_channel(std::shared_ptr<::grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(v1::TransformService::NewStub(channel_)) {}

std::unique_ptr<service_channel> service_channel::create(const std::string& target, const channel_tls& tls) {
    return std::unique_ptr<service_channel>(new service_channel(::grpc::CreateChannel(target, credentials_for(tls))));
}

asio::awaitable<call_outcome<v1::TransformRequestResponse>> service_channel::transform_request(
    v1::TransformRequestRequest request, std::chrono::nanoseconds timeout,
    std::shared_ptr<pipeline::client_watch> watch) const {
    auto start = [this](::grpc::ClientContext* c, const v1::TransformRequestRequest* q, v1::TransformRequestResponse* r,
                        done_callback done) { stub_->async()->TransformRequest(c, q, r, std::move(done)); };
    return unary_call<v1::TransformRequestRequest, v1::TransformRequestResponse>(start, std::move(request), timeout,
                                                                              std::move(watch));
}

asio::awaitable<call_outcome<v1::TransformResponseResponse>> service_channel::transform_response(
    v1::TransformResponseRequest request, std::chrono::nanoseconds timeout,
    std::shared_ptr<pipeline::client_watch> watch) const {
    auto start = [this](::grpc::ClientContext* c, const v1::TransformResponseRequest* q,
                        v1::TransformResponseResponse* r,
                        done_callback done) { stub_->async()->TransformResponse(c, q, r, std::move(done)); };
    return unary_call<v1::TransformResponseRequest, v1::TransformResponseResponse>(start, std::move(request), timeout,
                                                                                std::move(watch));
}

const char* code_name(::grpc::StatusCode code) {
    switch (code) {
        case ::grpc::StatusCode::CANCELLED: return "cancelled";
        case ::grpc::StatusCode::UNKNOWN: return "unknown";
        case ::grpc::StatusCode::INVALID_ARGUMENT: return "invalid argument";
        case ::grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline exceeded";
        case ::grpc::StatusCode::NOT_FOUND: return "not found";
        case ::grpc::StatusCode::PERMISSION_DENIED: return "permission denied";
        case ::grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource exhausted";
        case ::grpc::StatusCode::FAILED_PRECONDITION: return "failed precondition";
        case ::grpc::StatusCode::UNIMPLEMENTED: return "unimplemented";
        case ::grpc::StatusCode::INTERNAL: return "internal";
        case ::grpc::StatusCode::UNAVAILABLE: return "unavailable";
        case ::grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
        default: return "error";
    }
}

void cancel_calls_in_flight(std::chrono::milliseconds wait) {
    auto& f = in_flight();
    std::unique_lock guard(f.lock);
    for (auto* call : f.calls) call->TryCancel();
    f.none_left.wait_for(guard, wait, [&f] { return f.calls.empty(); });
}

std::string describe(const ::grpc::Status& status, std::chrono::nanoseconds timeout) {
    std::string out = code_name(status.error_code());
    if (status.error_code() == ::grpc::StatusCode::DEADLINE_EXCEEDED) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
        out += " after " + (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms");
        return out;
    }
    if (!status.error_message().empty()) out += ": " + status.error_message();
    return out;
}

}  // namespace iron::transforms::grpcsvc
