// libFuzzer target: what an HTTP/1.1 origin sends back (an origin is not trusted to frame its
// responses sanely: it may be compromised, or a reflecting service the client steers). Driven as
// the HTTP/1.1 upstream adapter (http/upstream_h1.hpp) and downstream drive it: the response parser with its limits (skip for HEAD), up to
// 16 interim 1xx heads, the framing guard check_response_head, then the head the client gets
// (hop-by-hop fields gone, version 1.1, chunked when the origin was chunked or close-delimited)
// and the body decoded into a relay buffer; and the same head translated for an HTTP/2 client
// (append_h1_response_fields).
//
// Input: byte 0 = read size (1..256), byte 1 = relay buffer size (1..256), byte 2 bit 0 = the
// request was HEAD, then the origin's bytes.
//
// Checked: a head that passes the guard is re-framed unambiguously: what the client gets parses
// again with the framing the proxy chose (chunked, or the origin's Content-Length) and passes the
// guard itself; a decoded body is never longer than what was sent, and exactly its Content-Length;
// the HTTP/2 translation carries no connection-specific field.
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

#include <boost/beast/http.hpp>

#include "fuzz_support.hpp"
#include "h2/headers.hpp"
#include "http/messages.hpp"
#include "http/request_guard.hpp"
#include "http/request_parser.hpp"
#include "http1_feed.hpp"

namespace {

namespace bhttp = boost::beast::http;
using iron::fuzz::require;
using response_parser = bhttp::response_parser<bhttp::buffer_body, iron::http::field_allocator<char>>;

// The head as forward() writes it to an HTTP/1.1 client.
std::string client_head(bhttp::response<bhttp::buffer_body, iron::http::proxy_fields>& res, bool chunked,
                        bool has_length, bool no_body) {
    iron::http::replace_fields(res.base(), iron::http::to_header_list(res.base()));
    iron::http::remove_hop_by_hop(res.base());
    res.version(11);
    if (chunked || (!has_length && !no_body)) res.chunked(true);  // close-delimited: re-framed
    res.keep_alive(true);
    std::ostringstream out;
    out << res.base();
    return out.str();
}

void check_client_head(const std::string& head, bool head_request, bool chunked, std::optional<std::uint64_t> length) {
    bhttp::response_parser<bhttp::empty_body> again;
    again.header_limit(iron::http::max_header_bytes * 2);
    again.body_limit(boost::none);
    again.eager(false);
    if (head_request) again.skip(true);
    boost::beast::error_code ec;
    const auto used = again.put(boost::asio::buffer(head), ec);
    require(!ec && again.is_header_done() && used == head.size());
    require(!iron::http::check_response_head(iron::http::request_head_of(again.get().base(), 11)));
    if (chunked) {
        require(again.chunked());
    } else if (length) {
        const auto again_length = again.content_length();
        require(again_length && *again_length == *length);
    }
}

void check_h2_translation(const iron::http::proxy_fields& fields) {
    boost::beast::http::fields plain;
    for (const auto& f : fields) plain.insert(f.name_string(), f.value());
    iron::h2::header_block out;
    iron::h2::append_h1_response_fields(plain, out);
    for (const auto& h : out) {
        require(!iron::h2::is_connection_specific(h.name, h.value));
        require(h.name != "te" && h.name != "trailer");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    iron::fuzz::peer_bytes origin{iron::fuzz::as_text(data + 3, size - 3), static_cast<std::size_t>(data[0]) + 1};
    const std::size_t relay_size = static_cast<std::size_t>(data[1]) + 1;
    const bool head_request = (data[2] & 1) != 0;

    std::string buf;
    std::optional<response_parser> rp;
    for (int interim = 0;; ++interim) {
        rp.emplace();
        rp->header_limit(iron::http::max_header_bytes);
        rp->body_limit(boost::none);
        if (head_request) rp->skip(true);
        if (iron::fuzz::read_head(*rp, buf, origin) == iron::fuzz::fed::closed) return 0;  // 502
        const unsigned status = rp->get().result_int();
        if (status >= 100 && status < 200 && status != 101 && interim < 16) continue;
        break;
    }
    auto& res = rp->get();
    if (iron::http::check_response_head(iron::http::request_head_of(res.base(), res.version()))) return 0;  // 502
    if (res.result_int() == 101) return 0;  // WebSocket (or 502): relayed as bytes from here

    check_h2_translation(res.base());
    const bool chunked = rp->chunked();
    std::optional<std::uint64_t> length;
    if (const auto cl = rp->content_length()) length = *cl;
    const bool no_body = rp->is_done() || head_request;
    check_client_head(client_head(res, chunked, length.has_value(), no_body), head_request, chunked, length);

    if (no_body) return 0;
    const std::size_t sent = buf.size() + origin.rest.size();
    const long long body = iron::fuzz::relay_body(*rp, buf, origin, relay_size);
    if (body < 0) return 0;  // cut short: the client's response is cut too
    require(static_cast<std::uint64_t>(body) <= sent);
    if (length) require(static_cast<std::uint64_t>(body) == *length);
    return 0;
}
