#pragma once
// The transform contract: a name and two synchronous, const hooks (plus an awaitable request
// hook for a transform that waits on the network, such as an LLM call). Transform instances are
// shared by all threads; what mutable state they keep (a breaker, a counter) is their own to guard.
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/headers.hpp"
#include "pipeline/exchange.hpp"

namespace iron::pipeline {

// The closed set of outcomes of a hook.
struct verdict {
    enum class kind { next, reject, stub, error };
    kind what = kind::next;
    int status = 403;              // reject/stub: status of the synthetic response
    core::header_list headers;     // reject/stub: extra response headers
    std::string body;              // reject/stub: response body (default: empty, text/plain)
    std::string error;             // error: message (goes to the audit record; no secrets). On
                                   // next: a failure the transform's fail-open mode let pass — the
                                   // trace keeps it and iron_proxy_transform_errors_total counts it
                                   // (see passed_despite)
    // reject/stub/error: why, in a few words a client or an operator can act on (the rule or the
    // pattern that decided, never a secret). The audit record carries it as the deciding
    // transform's `reason` annotation unless the transform annotated one itself.
    std::string reason;

    static verdict next() { return {}; }
    static verdict reject(int status = 403, std::string why = {}) {
        verdict v;
        v.what = kind::reject;
        v.status = status;
        v.reason = std::move(why);
        return v;
    }
    static verdict stub(int status = 200) { verdict v; v.what = kind::stub; v.status = status; return v; }
    static verdict fail(std::string message) { verdict v; v.what = kind::error; v.error = std::move(message); return v; }
    static verdict passed_despite(std::string failure) { verdict v; v.error = std::move(failure); return v; }
};

// Where a transform must sit relative to the transforms that swap placeholders for real secrets,
// so that nothing records a real credential. Each transform declares its own needs; the pipeline
// builder checks them (check_ordering in pipeline/ordering.hpp) without knowing any transform.
struct ordering {
    bool swaps_secrets = false;                 // puts real secrets into the request
    bool swaps_secrets_in_body = false;         // ... including its body
    bool must_see_body_before_secrets = false;  // records the body: refused after a body swap
    bool must_run_before_secrets = false;       // records headers: warned after any swap
};

class transform {
public:
    virtual ~transform() = default;
    virtual std::string_view name() const = 0;
    // Request phase: runs before any upstream dial. Returning reject/stub short-circuits.
    virtual verdict on_request(exchange& ex) const = 0;
    // Request phase, for a transform that must wait on the network without holding up the worker
    // thread (the judge's LLM call): when awaits_request(ex) is true the pipeline co_awaits
    // on_request_async instead of calling on_request. Both are decided on the request as the
    // earlier transforms left it.
    virtual bool awaits_request(const exchange& ex) const { (void)ex; return false; }
    virtual boost::asio::awaitable<verdict> on_request_async(exchange& ex) const;
    // Response phase: runs after the upstream's response head arrived, in the same (forward) order.
    virtual verdict on_response(exchange& ex) const { (void)ex; return verdict::next(); }
    // Response phase, for a transform that waits on the network (as awaits_request): when
    // awaits_response(ex) is true the pipeline co_awaits on_response_async instead of on_response.
    virtual bool awaits_response(const exchange& ex) const { (void)ex; return false; }
    virtual boost::asio::awaitable<verdict> on_response_async(exchange& ex) const;
    // Called with the response head before the response phase: should the proxy buffer the
    // response body (up to proxy.max_response_body_bytes) into ex.response_body for this transform?
    virtual bool wants_response_body(const exchange& ex) const { (void)ex; return false; }
    // Does this transform take part in the synthetic CONNECT / SOCKS5 host-level check? (Only
    // host-level policy runs on CONNECT, where Go ran every transform; per-request transforms run
    // inside the tunnel.)
    virtual bool applies_to_connect() const { return false; }
    // Called with the request head before the request phase: should the proxy buffer the request
    // body (up to proxy.max_request_body_bytes) so this transform can read or rewrite it?
    virtual bool wants_request_body(const exchange& ex) const { (void)ex; return false; }
    // This transform's place relative to secret swapping (see `ordering`). Default: anywhere.
    virtual ordering ordering_needs() const { return {}; }
    // Re-read external state (secret files, …). Runs off the request path (SIGHUP, timers); the
    // transform must publish the new state atomically so concurrent requests see old or new.
    virtual void refresh() const {}
};

}  // namespace iron::pipeline
