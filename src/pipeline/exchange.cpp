#include "pipeline/exchange.hpp"

namespace iron::pipeline {

void exchange::note(std::string_view key, boost::json::value value) {
    // Outside pipeline::run_* there is no trace to attach to; dropping is safer than crashing.
    if (current_trace == nullptr) return;
    current_trace->annotations[key] = std::move(value);
}

}  // namespace iron::pipeline
