#include "http/request_guard.hpp"

#include "core/headers.hpp"

namespace iron::http {

namespace http = boost::beast::http;

namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// RFC 9110 §5.6.2 tchar. Anything else (NBSP, other high bytes, ';' parameters, controls) makes
// a coding name no peer can be trusted to read as this proxy does.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    for (char t : std::string_view("!#$%&'*+-.^_`|~"))
        if (c == t) return true;
    return false;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

enum class te_shape { only_chunked, not_final_chunked, other_codings, malformed };

// The codings of all Transfer-Encoding lines together, as one comma-separated list (RFC 9110
// §5.3 allows splitting a list over lines; §5.6.1 says to ignore empty elements).
te_shape transfer_codings(const request_head_view& head) {
    int codings = 0;
    int chunked = 0;
    bool last_is_chunked = false;
    for (std::string_view line : head.transfer_encoding) {
        std::size_t pos = 0;
        while (pos <= line.size()) {
            std::size_t comma = line.find(',', pos);
            if (comma == std::string_view::npos) comma = line.size();
            std::string_view coding = trim_ows(line.substr(pos, comma - pos));
            pos = comma + 1;
            if (coding.empty()) continue;
            if (!is_token(coding)) return te_shape::malformed;
            ++codings;
            last_is_chunked = core::iequals(coding, "chunked");
            if (last_is_chunked) ++chunked;
        }
    }
    if (codings == 0 || chunked > 1) return te_shape::malformed;  // chunked applies once (RFC 9112 §6.1)
    if (!last_is_chunked) return te_shape::not_final_chunked;
    // The proxy re-frames bodies and implements no other coding: "gzip, chunked" would lose its
    // gzip on the way.
    return codings == 1 ? te_shape::only_chunked : te_shape::other_codings;
}

bool is_plain_length(std::string_view value) {
    value = trim_ows(value);
    if (value.empty() || value.size() > 18) return false;  // 18 digits: no overflow anywhere
    for (char c : value)
        if (c < '0' || c > '9') return false;
    return true;
}

// The fields an underscore spelling must not alias, each with its fixed rejection text.
struct aliased_field {
    std::string_view name;
    std::string_view reason;
};
constexpr aliased_field aliased_fields[] = {
    {"Host", "header name with underscore aliases Host"},
    {"Content-Length", "header name with underscore aliases Content-Length"},
    {"Transfer-Encoding", "header name with underscore aliases Transfer-Encoding"},
    {"Connection", "header name with underscore aliases Connection"},
    {"Upgrade", "header name with underscore aliases Upgrade"},
    {"TE", "header name with underscore aliases TE"},
    {"Proxy-Authorization", "header name with underscore aliases Proxy-Authorization"},
    {"Proxy-Connection", "header name with underscore aliases Proxy-Connection"},
    {"Keep-Alive", "header name with underscore aliases Keep-Alive"},
    {"Trailer", "header name with underscore aliases Trailer"},
    {"Expect", "header name with underscore aliases Expect"},
};

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `name` and `field` spell the same letters (case-insensitively) once their '_' and '-' are dropped.
bool aliases(std::string_view name, std::string_view field) {
    auto is_separator = [](char c) { return c == '_' || c == '-'; };
    std::size_t i = 0;
    std::size_t j = 0;
    for (;; ++i, ++j) {
        while (i < name.size() && is_separator(name[i])) ++i;
        while (j < field.size() && is_separator(field[j])) ++j;
        if (i == name.size() || j == field.size()) return i == name.size() && j == field.size();
        if (ascii_lower(name[i]) != ascii_lower(field[j])) return false;
    }
}

template <class Fields>
request_head_view request_head_in(const Fields& fields, unsigned version) {
    request_head_view out;
    out.version = version;
    for (const auto& f : fields) {
        switch (f.name()) {
            case http::field::host: out.host.push_back(f.value()); break;
            case http::field::content_length: out.content_length.push_back(f.value()); break;
            case http::field::transfer_encoding: out.transfer_encoding.push_back(f.value()); break;
            default: {
                const std::string_view name = f.name_string();
                if (name.find('_') != std::string_view::npos) out.underscore_names.push_back(name);
                break;
            }
        }
    }
    return out;
}

}  // namespace

namespace {

// The framing rules shared by requests and responses (Host aside).
std::optional<head_rejection> check_framing(const request_head_view& head) {
    if (!head.transfer_encoding.empty()) {
        // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; the framing is faulty.
        if (head.version < 11) return head_rejection{400, "Transfer-Encoding in an HTTP/1.0 request"};
        // RFC 9112 §6.3 lets Transfer-Encoding override Content-Length, but a message carrying
        // both is the classic smuggling shape: fail closed instead of picking one.
        if (!head.content_length.empty())
            return head_rejection{400, "both Transfer-Encoding and Content-Length"};
        switch (transfer_codings(head)) {
            case te_shape::only_chunked: break;
            case te_shape::malformed: return head_rejection{400, "malformed Transfer-Encoding"};
            // RFC 9112 §6.3: without chunked last, the request body length cannot be known.
            case te_shape::not_final_chunked:
                return head_rejection{400, "Transfer-Encoding does not end with chunked"};
            case te_shape::other_codings: return head_rejection{501, "unsupported transfer coding"};
        }
    }
    // RFC 9110 §8.6 allows a list of equal values; a single plain number is all any client sends.
    if (head.content_length.size() > 1) return head_rejection{400, "multiple Content-Length fields"};
    if (head.content_length.size() == 1 && !is_plain_length(head.content_length.front()))
        return head_rejection{400, "malformed Content-Length"};
    return std::nullopt;
}

}  // namespace

std::optional<head_rejection> check_underscore_name(std::string_view name) {
    if (name.find('_') == std::string_view::npos) return std::nullopt;  // the common case, and the literal names
    for (const auto& field : aliased_fields)
        if (aliases(name, field.name)) return head_rejection{400, field.reason};
    return std::nullopt;
}

std::optional<head_rejection> check_request_head(const request_head_view& head) {
    for (std::string_view name : head.underscore_names)
        if (auto bad = check_underscore_name(name)) return bad;
    // RFC 9112 §3.2: more than one Host line is a 400, even when they agree; policy would read
    // one and the origin perhaps the other.
    if (head.host.size() > 1) return head_rejection{400, "multiple Host header fields"};
    return check_framing(head);
}

std::optional<head_rejection> check_response_head(const request_head_view& head) {
    // Beast frames "Transfer-Encoding: xchunked" + Content-Length by the length and would pool a
    // connection with the rest of the body still in it; a client behind us might read it
    // otherwise. The status is the proxy's own: an ambiguous response is a bad gateway.
    if (auto bad = check_framing(head)) return head_rejection{502, bad->reason};
    return std::nullopt;
}

request_head_view request_head_of(const http::fields& fields, unsigned version) {
    return request_head_in(fields, version);
}

request_head_view request_head_of(const proxy_fields& fields, unsigned version) {
    return request_head_in(fields, version);
}

}  // namespace iron::http
