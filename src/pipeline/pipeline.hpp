#pragma once
// The ordered transform pipeline: immutable after build, shared by all threads,
// swapped whole on reload.
#include <memory>
#include <string>
#include <vector>

#include "audit/record.hpp"
#include "pipeline/transform.hpp"

namespace iron::pipeline {

// The result of running one phase: the short-circuiting verdict (kind::next when every transform
// continued) and, for reject/stub/error, the name of the transform that decided. For kind::error,
// outcome.error is already wrapped as "transform <name> request: <msg>" (or "response: ") — the
// text for the audit record's `error` — while the trace keeps the transform's own <msg>, as in Go.
// A hook that throws is caught and reported the same way (fail closed).
struct phase_result {
    verdict outcome;
    std::string decided_by;
};

// What the response phase needs before it runs, for one response: its body buffered, and the
// event loop (a transform waits on the network). Both false on the common path.
struct response_needs {
    bool body = false;
    bool awaits = false;
};

class pipeline {
public:
    explicit pipeline(std::vector<std::unique_ptr<const transform>> transforms,
                      std::unique_ptr<const transform> last_stage = nullptr)
        : transforms_(std::move(transforms)), last_stage_(std::move(last_stage)) {}

    // Runs request hooks in order, appending one trace per transform run (including the one that
    // short-circuits) to `traces`. Transforms after a short-circuit do not run.
    phase_result run_request(exchange& ex, std::vector<audit::trace>& traces) const;
    // The same, awaiting the transforms that wait on the network (transform::awaits_request).
    // Only needed when awaits_on_request(): the plain run_request costs no coroutine.
    boost::asio::awaitable<phase_result> run_request_awaiting(exchange& ex, std::vector<audit::trace>& traces) const;
    bool awaits_on_request(const exchange& ex) const;
    // Same for the response phase (forward order, as Go: not reversed).
    phase_result run_response(exchange& ex, std::vector<audit::trace>& traces) const;
    boost::asio::awaitable<phase_result> run_response_awaiting(exchange& ex, std::vector<audit::trace>& traces) const;
    response_needs needs_on_response(const exchange& ex) const;
    // The CONNECT / SOCKS5 check: runs only transforms with applies_to_connect().
    phase_result run_connect(exchange& ex, std::vector<audit::trace>& traces) const;

    std::string names() const;  // "allowlist → secrets" (the last stage is not a transform)
    bool wants_request_body(const exchange& ex) const;
    void refresh() const;  // every transform's refresh()
    bool empty() const { return transforms_.empty(); }
    bool has_last_stage() const { return last_stage_ != nullptr; }

private:
    std::vector<std::unique_ptr<const transform>> transforms_;
    // One of the proxy's own stages that is not a transform (the MCP policy): its hooks run after
    // every transform let the request (or the response) through, in both phases, never on a
    // CONNECT check. It leaves no trace and is never named as rejected_by / stubbed_by (a verdict
    // of its own has an empty decided_by); what it did goes to its own audit group.
    std::unique_ptr<const transform> last_stage_;
};

}  // namespace iron::pipeline
