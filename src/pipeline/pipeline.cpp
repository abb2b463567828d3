#include "pipeline/pipeline.hpp"

#include <chrono>
#include <exception>
#include <optional>

namespace iron::pipeline {
namespace {

enum class phase { request, response, connect };

audit::trace_action action_for(verdict::kind k) {
    switch (k) {
        case verdict::kind::next: return audit::trace_action::allow;
        case verdict::kind::reject: return audit::trace_action::reject;
        case verdict::kind::stub: return audit::trace_action::stub;
        case verdict::kind::error: return audit::trace_action::error;
    }
    return audit::trace_action::error;
}

// Calls one hook. A throwing transform is a bug, but the request must still fail closed (error
// verdict, 502) rather than take the worker down or skip the transform.
verdict call_hook(const transform& t, exchange& ex, phase p) {
    try {
        return p == phase::response ? t.on_response(ex) : t.on_request(ex);
    } catch (const std::exception& e) {
        return verdict::fail(e.what());
    } catch (...) {
        return verdict::fail("unknown exception");
    }
}

double elapsed_ms(std::chrono::steady_clock::time_point start) {
    auto elapsed = std::chrono::steady_clock::now() - start;
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()) / 1000.0;
}

// Files the trace of one transform that ran. A verdict other than next ends the phase: returned,
// with the transform that decided.
std::optional<phase_result> settle_hook(const transform& t, verdict v, audit::trace tr, exchange& ex,
                                        std::vector<audit::trace>& traces, phase p) {
    ex.current_trace = nullptr;
    tr.action = action_for(v.what);
    if (!v.error.empty()) tr.error = v.error;  // an error, or one the transform let pass (fail open)
    if (!v.reason.empty() && !tr.annotations.contains("reason")) tr.annotations["reason"] = v.reason;
    traces.push_back(std::move(tr));

    if (v.what == verdict::kind::next) return std::nullopt;
    // The upstream response is replaced by a verdict: nothing of it is relayed, so filters
    // attached for it would describe work that never happened.
    if (p == phase::response) ex.response_filters.clear();
    if (v.what == verdict::kind::error) {
        // As in the Go proxy: the trace keeps the transform's own message, the phase outcome
        // (what goes into the audit record's `error`) names the transform and the phase.
        const char* word = p == phase::response ? " response: " : " request: ";
        v.error = "transform " + std::string(t.name()) + word + v.error;
    }
    return phase_result{std::move(v), std::string(t.name())};
}

// Points the exchange's annotations at a fresh trace for `t` (which must not move until settled).
void begin_trace(const transform& t, audit::trace& tr, exchange& ex, const std::vector<audit::trace>& traces) {
    tr.name = std::string(t.name());
    ex.current_trace = &tr;
    ex.current_trace_index = traces.size();
}

phase_result run_phase(const std::vector<std::unique_ptr<const transform>>& transforms, exchange& ex,
                       std::vector<audit::trace>& traces, phase p) {
    for (const auto& t : transforms) {
        if (p == phase::connect && !t->applies_to_connect()) continue;
        audit::trace tr;
        begin_trace(*t, tr, ex, traces);
        auto start = std::chrono::steady_clock::now();
        verdict v = call_hook(*t, ex, p);
        tr.duration_ms = elapsed_ms(start);
        if (auto decided = settle_hook(*t, std::move(v), std::move(tr), ex, traces, p)) return std::move(*decided);
    }
    return {verdict::next(), {}};
}

// Awaits one asynchronous hook; a throw fails closed like call_hook.
boost::asio::awaitable<verdict> await_hook(const transform& t, exchange& ex, phase p) {
    std::string thrown;
    try {
        if (p == phase::response) co_return co_await t.on_response_async(ex);
        co_return co_await t.on_request_async(ex);
    } catch (const std::exception& e) {
        thrown = e.what();
    } catch (...) {
        thrown = "unknown exception";
    }
    co_return verdict::fail(std::move(thrown));
}

bool awaits(const transform& t, const exchange& ex, phase p) {
    return p == phase::response ? t.awaits_response(ex) : t.awaits_request(ex);
}

// run_phase for a phase in which some transform waits on the network: those are awaited, the
// others called as usual.
boost::asio::awaitable<phase_result> run_phase_awaiting(const std::vector<std::unique_ptr<const transform>>& transforms,
                                                        exchange& ex, std::vector<audit::trace>& traces, phase p) {
    for (const auto& t : transforms) {
        audit::trace tr;
        begin_trace(*t, tr, ex, traces);
        auto start = std::chrono::steady_clock::now();
        verdict v;
        if (awaits(*t, ex, p))
            v = co_await await_hook(*t, ex, p);
        else
            v = call_hook(*t, ex, p);
        tr.duration_ms = elapsed_ms(start);
        auto decided = settle_hook(*t, std::move(v), std::move(tr), ex, traces, p);
        if (decided) co_return std::move(*decided);
    }
    co_return phase_result{verdict::next(), {}};
}

// The last stage's hook, outside any trace. Its error verdict keeps its own message (the stage
// names itself in it); a throw fails closed like any hook.
phase_result run_last_stage(const transform* stage, exchange& ex, phase p) {
    if (stage == nullptr) return {verdict::next(), {}};
    ex.current_trace = nullptr;
    verdict v = call_hook(*stage, ex, p);
    if (v.what != verdict::kind::next && p == phase::response) ex.response_filters.clear();
    return {std::move(v), {}};
}

// The same for a last stage that waits on the network for this request (the MCP gateway awaiting
// a remote secret store's first fetch).
boost::asio::awaitable<phase_result> run_last_stage_awaiting(const transform* stage, exchange& ex) {
    if (stage == nullptr || !stage->awaits_request(ex)) co_return run_last_stage(stage, ex, phase::request);
    ex.current_trace = nullptr;
    verdict v = co_await await_hook(*stage, ex, phase::request);
    co_return phase_result{std::move(v), {}};
}

}  // namespace

phase_result pipeline::run_request(exchange& ex, std::vector<audit::trace>& traces) const {
    phase_result decided = run_phase(transforms_, ex, traces, phase::request);
    if (decided.outcome.what != verdict::kind::next) return decided;
    return run_last_stage(last_stage_.get(), ex, phase::request);
}

boost::asio::awaitable<phase_result> pipeline::run_request_awaiting(exchange& ex,
                                                                   std::vector<audit::trace>& traces) const {
    phase_result decided = co_await run_phase_awaiting(transforms_, ex, traces, phase::request);
    if (decided.outcome.what != verdict::kind::next) co_return decided;
    co_return co_await run_last_stage_awaiting(last_stage_.get(), ex);
}

boost::asio::awaitable<phase_result> pipeline::run_response_awaiting(exchange& ex,
                                                                    std::vector<audit::trace>& traces) const {
    phase_result decided = co_await run_phase_awaiting(transforms_, ex, traces, phase::response);
    if (decided.outcome.what != verdict::kind::next) co_return decided;
    co_return run_last_stage(last_stage_.get(), ex, phase::response);
}

response_needs pipeline::needs_on_response(const exchange& ex) const {
    response_needs needs;
    for (const auto& t : transforms_) {
        needs.body = needs.body || t->wants_response_body(ex);
        needs.awaits = needs.awaits || t->awaits_response(ex);
    }
    if (last_stage_) {
        needs.body = needs.body || last_stage_->wants_response_body(ex);
        needs.awaits = needs.awaits || last_stage_->awaits_response(ex);
    }
    return needs;
}

bool pipeline::awaits_on_request(const exchange& ex) const {
    for (const auto& t : transforms_)
        if (t->awaits_request(ex)) return true;
    return last_stage_ && last_stage_->awaits_request(ex);
}

phase_result pipeline::run_response(exchange& ex, std::vector<audit::trace>& traces) const {
    phase_result decided = run_phase(transforms_, ex, traces, phase::response);
    if (decided.outcome.what != verdict::kind::next) return decided;
    return run_last_stage(last_stage_.get(), ex, phase::response);
}

phase_result pipeline::run_connect(exchange& ex, std::vector<audit::trace>& traces) const {
    return run_phase(transforms_, ex, traces, phase::connect);
}

std::string pipeline::names() const {
    std::string out;
    for (const auto& t : transforms_) {
        if (!out.empty()) out += " \xE2\x86\x92 ";  // " → "
        out += t->name();
    }
    return out;
}

}  // namespace iron::pipeline

namespace iron::pipeline {

boost::asio::awaitable<verdict> transform::on_request_async(exchange& ex) const { co_return on_request(ex); }
boost::asio::awaitable<verdict> transform::on_response_async(exchange& ex) const { co_return on_response(ex); }

bool pipeline::wants_request_body(const exchange& ex) const {
    for (const auto& t : transforms_)
        if (t->wants_request_body(ex)) return true;
    return last_stage_ && last_stage_->wants_request_body(ex);
}

void pipeline::refresh() const {
    for (const auto& t : transforms_) t->refresh();
    if (last_stage_) last_stage_->refresh();
}

}  // namespace iron::pipeline
