// libFuzzer target: an HTTP/2 request's header block on its way through the proxy (h2/headers.cpp
// and the head checks of serve_stream in h2/server.cpp): :method/:path/:authority/Host lookups,
// the Host vs :authority comparison, the target checks shared with HTTP/1.1, then translation to
// the three places a block goes: an HTTP/2 origin (append_h2_fields), an HTTP/1.1 origin
// (set_h1_fields), and the other way, an HTTP/1.1 response head to an HTTP/2 client
// (append_h1_response_fields).
//
// Input: NUL-separated name, value, name, value, ... Only blocks nghttp2 lets through reach the
// proxy (nghttp2_accepts below); for any other, nghttp2 resets the stream and the input is skipped.
//
// Checked: no connection-specific field, Host or TE (other than "trailers" for HTTP/2) crosses
// the proxy; names sent to HTTP/2 are lower-case; at most one Cookie goes to HTTP/1.1; and the
// HTTP/1.1 request head built from the block parses again with the same method and target,
// exactly one Host (the :authority policy saw) and the framing the proxy chose.
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>
#include <nghttp2/nghttp2.h>

#include "core/host_glob.hpp"
#include "fuzz_support.hpp"
#include "h2/headers.hpp"
#include "http/messages.hpp"

namespace {

namespace bhttp = boost::beast::http;
using iron::fuzz::require;
using iron::h2::header_block;

const std::uint8_t* bytes(std::string_view s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }

// What nghttp2 1.52 (with its HTTP messaging checks on, as h2/connection.cpp runs it) delivers;
// anything else resets the stream before the proxy sees it. Pseudo-headers: the four of a request,
// each once, with their own syntax. Other names: tokens; values: no CR/LF/NUL and no leading or
// trailing whitespace (RFC 9113 §8.2.1); Host at most once; Content-Length once, one number.
bool nghttp2_accepts(std::string_view n, std::string_view v) {
    if (n == ":method") return nghttp2_check_method(bytes(v), v.size()) != 0;
    if (n == ":path") return nghttp2_check_path(bytes(v), v.size()) != 0;
    if (n == ":authority") return nghttp2_check_authority(bytes(v), v.size()) != 0;
    if (n == ":scheme") return v == "http" || v == "https";
    if (!nghttp2_check_header_name(bytes(n), n.size()) || !nghttp2_check_header_value_rfc9113(bytes(v), v.size()))
        return false;
    if (n == "content-length") {
        if (v.empty() || v.size() > 18) return false;
        for (char c : v)
            if (c < '0' || c > '9') return false;
    }
    return true;
}

bool only_once(std::string_view n) { return n[0] == ':' || n == "host" || n == "content-length"; }

std::optional<header_block> block_from(std::string_view in) {
    header_block block;
    std::vector<std::string_view> parts;
    iron::fuzz::for_each_field(in, '\0', [&](std::string_view f) { parts.push_back(f); });
    for (std::size_t i = 0; i + 1 < parts.size(); i += 2) {
        const std::string_view name = parts[i], value = parts[i + 1];
        if (!nghttp2_accepts(name, value)) return std::nullopt;
        for (const auto& h : block)
            if (h.name == name && only_once(name)) return std::nullopt;
        block.push_back({std::string(name), std::string(value)});
    }
    return block;
}

const std::string* find(const header_block& b, std::string_view name) {
    for (const auto& h : b)
        if (h.name == name) return &h.value;
    return nullptr;
}

bool is_lower(std::string_view s) {
    for (char c : s)
        if (c >= 'A' && c <= 'Z') return false;
    return true;
}

void check_to_h2(const iron::core::header_list& headers) {
    header_block out;
    iron::h2::append_h2_fields(headers, out);
    for (const auto& h : out) {
        require(is_lower(h.name));
        require(h.name != "host" && !iron::h2::is_connection_specific(h.name, h.value));
    }
}

// The HTTP/1.1 request forward_h1_on (h2/server.cpp) writes: Host from :authority, the
// translated fields, and its framing (`streamed`: the client is still sending DATA).
void check_to_h1(const iron::core::header_list& headers, const std::string& method, const std::string& authority,
                 const iron::http::request_target& target, bool streamed) {
    bhttp::request<bhttp::empty_body> req;
    req.method_string(method);
    req.target(target.origin_form());
    req.version(11);
    req.set(bhttp::field::host, authority);
    iron::h2::set_h1_fields(headers, req.base());
    int cookies = 0;
    for (const auto& f : req.base()) {
        const auto name = f.name_string();
        if (f.name() != bhttp::field::host) require(!iron::core::iequals(name, "host"));
        require(!iron::core::iequals(name, "te"));
        require(!iron::h2::is_connection_specific(name, f.value()));
        if (iron::core::iequals(name, "cookie")) ++cookies;
    }
    require(cookies <= 1);
    if (!streamed) {
        req.erase(bhttp::field::content_length);
        if (method == "POST" || method == "PUT" || method == "PATCH") req.set(bhttp::field::content_length, "0");
    } else if (!headers.contains("content-length")) {
        req.chunked(true);
    }
    req.keep_alive(true);
    std::ostringstream os;
    os << req.base();
    const std::string head = os.str();

    bhttp::request_parser<bhttp::empty_body> again;
    again.header_limit(16 * 1024 * 1024);
    again.body_limit(boost::none);
    again.eager(false);
    boost::beast::error_code ec;
    const auto used = again.put(boost::asio::buffer(head), ec);
    require(!ec && again.is_header_done() && used == head.size());
    require(again.get().method_string() == method && again.get().target() == target.origin_form());
    int hosts = 0;
    for (const auto& f : again.get().base())
        if (f.name() == bhttp::field::host) ++hosts;
    require(hosts == 1 && again.get()[bhttp::field::host] == authority);
    if (streamed) require(again.chunked() != headers.contains("content-length"));
    else require(!again.chunked());
}

void check_h1_response(const header_block& block) {
    bhttp::fields in;
    for (const auto& h : block)
        if (!h.name.empty() && h.name[0] != ':') in.insert(h.name, h.value);
    header_block out;
    iron::h2::append_h1_response_fields(in, out);
    for (const auto& h : out) {
        require(is_lower(h.name));
        require(!iron::h2::is_connection_specific(h.name, h.value) && h.name != "te" && h.name != "trailer");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto parsed = block_from(iron::fuzz::as_text(data, size));
    if (!parsed) return 0;
    const header_block& block = *parsed;
    check_h1_response(block);

    // serve_stream's head checks, in its order.
    const std::string* method = find(block, ":method");
    const std::string* path = find(block, ":path");
    const std::string* authority = find(block, ":authority");
    if (!authority) authority = find(block, "host");
    const std::string host_text = authority ? *authority : "";
    if (method && *method == "CONNECT") return 0;  // 405
    if (const std::string* host = find(block, "host");
        host && authority != host && iron::core::normalize_host(*host) != iron::core::normalize_host(host_text))
        return 0;  // 400: Host disagrees with :authority
    std::optional<iron::http::request_target> target;
    if (path) target = iron::http::parse_request_target(*path);
    if (target && !target->authority.empty()) target.reset();
    std::optional<std::string> decoded;
    if (iron::http::check_target_and_host(host_text, target, decoded)) return 0;  // 400

    auto headers = iron::h2::to_header_list(block);
    headers.erase("host");  // :authority is the one name of the target
    for (const auto& e : headers.entries()) require(!e.name.empty() && e.name[0] != ':');
    check_to_h2(headers);
    const std::string method_text = method ? *method : "";
    if (method_text.empty()) return 0;  // nghttp2 resets a request without :method
    check_to_h1(headers, method_text, host_text, *target, false);
    check_to_h1(headers, method_text, host_text, *target, true);
    return 0;
}
