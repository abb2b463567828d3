#include "http/respond.hpp"

namespace iron::http {

namespace bhttp = boost::beast::http;

bhttp::response<bhttp::string_body> make_response(const exchange::proxy_reply& r, bool keep_alive) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
    for (const auto& h : r.headers.entries()) res.insert(h.name, h.value);
    res.body() = r.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace iron::http
