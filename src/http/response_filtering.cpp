#include "http/response_filtering.hpp"

namespace iron::http {

void filter_piece(pipeline::response_filter_chain& filters, boost::beast::http::buffer_body::value_type& body,
                  std::string& filtered) {
    filtered.clear();
    filters.feed(std::string_view(static_cast<const char*>(body.data), body.size), filtered);
    if (!body.more) filters.finish(filtered);
    body.data = filtered.empty() ? nullptr : filtered.data();
    body.size = filtered.size();
}

bool filter_piece(pipeline::response_filter_chain& filters, std::string_view piece, bool last, std::string& out) {
    out.clear();
    filters.feed(piece, out);
    if (last) filters.finish(out);
    return !out.empty();
}

pipeline::response_filter_chain* body_filters_for_h2(pipeline::exchange& ex, bool has_body) {
    if (ex.response_filters.empty() || !has_body || !ex.response_filters.rewrites_body()) return nullptr;
    ex.response_headers.erase("content-length");
    return &ex.response_filters;
}

}  // namespace iron::http
