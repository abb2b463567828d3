#include "pipeline/response_filter.hpp"

namespace iron::pipeline {

void response_filter_chain::attach(std::unique_ptr<response_filter> filter, std::size_t trace_index) {
    if (!filter) return;
    rewrites_body_ = rewrites_body_ || filter->rewrites_body();
    filters_.push_back({std::move(filter), trace_index});
}

void response_filter_chain::clear() {
    filters_.clear();
    rewrites_body_ = false;
}

void response_filter_chain::run(std::size_t first, std::string_view in, bool last, std::string& out) {
    while (first < filters_.size() && !filters_[first].filter->rewrites_body()) ++first;
    if (first == filters_.size()) {
        out.append(in);
        return;
    }
    response_filter& f = *filters_[first].filter;
    if (first + 1 == filters_.size()) {  // the usual single filter: straight into `out`
        f.feed(in, out);
        if (last) f.finish(out);
        return;
    }
    std::string mid;
    f.feed(in, mid);
    if (last) f.finish(mid);
    run(first + 1, mid, last, out);
}

void response_filter_chain::feed(std::string_view in, std::string& out) { run(0, in, false, out); }

void response_filter_chain::finish(std::string& out) { run(0, {}, true, out); }

void response_filter_chain::rewrite_text(std::string& text) {
    for (auto& a : filters_) a.filter->rewrite_text(text);
}

void response_filter_chain::annotate(std::vector<audit::trace>& response_traces) const {
    for (const auto& a : filters_)
        if (a.trace_index < response_traces.size()) a.filter->annotate(response_traces[a.trace_index]);
}

}  // namespace iron::pipeline
