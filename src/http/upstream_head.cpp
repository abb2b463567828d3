#include "http/upstream_head.hpp"

#include <string>

#include "http/messages.hpp"

namespace iron::http {

namespace bhttp = boost::beast::http;

namespace {

bool method_expects_body(bhttp::verb m) {
    return m == bhttp::verb::post || m == bhttp::verb::put || m == bhttp::verb::patch;
}

void set_framing(proxy_request& req, const outgoing_framing& body) {
    if (body.buffered && body.buffered_whole) {
        // Fully buffered (maybe rewritten): exact length, whatever the client's framing was.
        req.erase(bhttp::field::transfer_encoding);
        if (body.buffered_size > 0 || method_expects_body(req.method()) || body.had_content_length)
            req.set(bhttp::field::content_length, std::to_string(body.buffered_size));
    } else if (body.chunked_in) {
        req.chunked(true);
    }
}

}  // namespace

void prepare_upstream_head(proxy_request& req, const core::header_list& headers, std::string_view host,
                           std::string_view target, const outgoing_framing& body, bool websocket) {
    replace_fields(req.base(), headers);
    const bool te_trailers = remove_hop_by_hop(req.base());
    if (websocket) {
        // The one hop-by-hop exchange that must reach the origin: the protocol switch itself.
        req.set(bhttp::field::connection, "Upgrade");
        req.set(bhttp::field::upgrade, "websocket");
    }
    req.erase(bhttp::field::expect);
    if (te_trailers) req.set(bhttp::field::te, "trailers");
    if (req[bhttp::field::host].empty()) req.set(bhttp::field::host, host);
    req.target(target);
    req.version(11);
    set_framing(req, body);
    req.keep_alive(true);
}

}  // namespace iron::http
