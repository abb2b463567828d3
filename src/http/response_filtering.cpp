#include "http/response_filtering.hpp"

namespace iron::http {

pipeline::response_filter_chain* body_filters_for_h2(pipeline::exchange& ex, bool has_body) {
    if (ex.response_filters.empty() || !has_body || !ex.response_filters.rewrites_body()) return nullptr;
    ex.response_headers.erase("content-length");
    return &ex.response_filters;
}

}  // namespace iron::http
