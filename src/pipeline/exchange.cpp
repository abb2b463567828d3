#include "pipeline/exchange.hpp"

#include <algorithm>

#include "core/percent.hpp"
#include "core/stream_replace.hpp"

namespace iron::pipeline {

void exchange::note(std::string_view key, boost::json::value value) {
    // Outside pipeline::run_* there is no trace to attach to; dropping is safer than crashing.
    if (current_trace == nullptr) return;
    current_trace->annotations[key] = std::move(value);
}

void exchange::attach_response_filter(std::unique_ptr<response_filter> filter) {
    if (current_trace == nullptr) return;  // outside a phase: no trace to report to
    response_filters.attach(std::move(filter), current_trace_index);
}

std::size_t exchange::redact(std::string& text) const {
    std::size_t count = 0;
    for (const auto& r : redactions) {
        if (!r.values || r.values->empty()) continue;
        std::string out;
        const std::size_t n = r.values->replace(text, out);
        if (n == 0) continue;
        count += n;
        text = std::move(out);
        // Header-like text: a placeholder holding CR, LF or NUL must not split a response head.
        if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) text = "[REDACTED]";
    }
    return count;
}

void exchange::note_injected(std::string_view value) {
    if (value.empty()) return;
    injected_secrets.emplace_back(value);
    std::string escaped = core::percent_encode(value);  // as it reads in a query or a path
    if (escaped != value) injected_secrets.push_back(std::move(escaped));
}

std::string exchange::hide_injected(std::string_view text) const {
    std::string out(text);
    if (injected_secrets.empty()) return out;
    // Longest first, so a value that contains another ("Bearer <token>") is hidden whole.
    std::vector<const std::string*> longest_first;
    for (const auto& v : injected_secrets) longest_first.push_back(&v);
    std::sort(longest_first.begin(), longest_first.end(),
              [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
    constexpr std::string_view marker = "[REDACTED]";
    for (const std::string* v : longest_first) {
        for (auto at = out.find(*v); at != std::string::npos; at = out.find(*v, at + marker.size()))
            out.replace(at, v->size(), marker);
    }
    return out;
}

}  // namespace iron::pipeline

namespace iron::pipeline {

void client_watch::client_leaves() {
    if (left_) return;
    left_ = true;
    std::function<void()> hook = std::move(hook_);
    hook_ = nullptr;
    if (hook) hook();
}

void client_watch::on_client_leaving(std::function<void()> hook) {
    if (left_ && hook) return hook();
    hook_ = std::move(hook);
}

}  // namespace iron::pipeline
