#pragma once
// Streaming response rewriting, the part of a response a response-phase hook cannot see because
// it has not arrived yet: the body (relayed piece by piece, never buffered whole) and what
// follows it (HTTP/2 trailers). A transform's on_response attaches a filter to the exchange
// (exchange::attach_response_filter); the HTTP layer, for HTTP/1.1 and HTTP/2 alike, then:
//   * when any attached filter rewrites_body() and the response has a body: drops
//     Content-Length (the length may change; HTTP/1.1 is re-framed as chunked, HTTP/2 simply
//     sends DATA), passes every body piece through feed() and calls finish() at the end;
//   * passes trailer values and the HTTP/1.1 reason phrase through rewrite_text();
//   * calls annotate() once, when the audit record is written, with the trace of the
//     transform that attached the filter (also when the body was cut short or never relayed).
// Without a filter the relays do nothing extra: one branch per piece, no virtual call.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/record.hpp"

namespace iron::pipeline {

class response_filter {
public:
    virtual ~response_filter() = default;
    // false: only rewrite_text()/annotate() are used; the body is relayed untouched and its
    // framing kept.
    virtual bool rewrites_body() const = 0;
    // A body piece: append what may go to the client now. A filter may hold back a bounded tail
    // (e.g. the start of a pattern split across pieces) and must release it in finish().
    virtual void feed(std::string_view in, std::string& out) = 0;
    // The body ended: append whatever was held back.
    virtual void finish(std::string& out) = 0;
    // A short piece of response text outside the body (trailer value, reason phrase), in place.
    virtual void rewrite_text(std::string& text) = 0;
    // Audit annotations for the attaching transform's response-phase trace. Never a secret.
    virtual void annotate(audit::trace& own_trace) const = 0;
};

// The filters attached to one exchange, applied in the order they were attached.
class response_filter_chain {
public:
    bool empty() const { return filters_.empty(); }
    // True when the body must go through feed()/finish() (and lose its Content-Length).
    bool rewrites_body() const { return rewrites_body_; }

    // `trace_index`: the attaching transform's position in the response-phase trace list.
    void attach(std::unique_ptr<response_filter> filter, std::size_t trace_index);
    void clear();

    // Body pieces: `out` receives (appended) what goes to the client now.
    void feed(std::string_view in, std::string& out);
    void finish(std::string& out);
    void rewrite_text(std::string& text);
    // Each filter annotates its own transform's trace (skipped when that index is out of range).
    void annotate(std::vector<audit::trace>& response_traces) const;

private:
    // Runs piece `in` through filters_[first…] (finishing each when `last`) into `out`.
    void run(std::size_t first, std::string_view in, bool last, std::string& out);

    // shared_ptr only so that an exchange stays copyable (tests copy them); a copy shares the
    // filters' state, and production code never copies an exchange after the response phase.
    struct attached {
        std::shared_ptr<response_filter> filter;
        std::size_t trace_index;
    };
    std::vector<attached> filters_;
    bool rewrites_body_ = false;
};

}  // namespace iron::pipeline
