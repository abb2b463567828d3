#include "transforms/grpc/apply.hpp"

#include <optional>

#include "transforms/grpc/convert.hpp"

namespace iron::transforms::grpcsvc {
namespace {

bool printable(std::string_view s) {
    for (char c : s)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding; nothing on a malformed escape or an encoded NUL.
std::optional<std::string> decode(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '%') {
            out += raw[i];
            continue;
        }
        if (i + 2 >= raw.size()) return std::nullopt;
        const int hi = hex_digit(raw[i + 1]), lo = hex_digit(raw[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

bool has_dot_segment(std::string_view path) {
    for (std::size_t start = 0; start <= path.size();) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        const auto segment = path.substr(start, end - start);
        if (segment == "." || segment == "..") return true;
        start = end + 1;
    }
    return false;
}

bool is_method_token(std::string_view m) {
    if (m.empty() || m.size() > 32) return false;
    for (char c : m)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_')) return false;
    return true;
}

// `replacement` with the entries of `current` the proxy owns put back in place of any of its own.
core::header_list keep_owned(core::header_list replacement, const core::header_list& current) {
    static constexpr std::string_view owned[] = {"Host", "Content-Length", "Transfer-Encoding"};
    for (auto name : owned) replacement.erase(name);
    for (const auto& h : current.entries())
        for (auto name : owned)
            if (core::iequals(h.name, name)) replacement.add(h.name, h.value);
    return replacement;
}

result<void> replace_body(pipeline::body_buffer& body, const std::string& data, const char* which, const char* key) {
    if (!body.present || !body.complete || body.more_to_read)
        return make_error(std::string(which) + ".body given, but the service was not sent the whole body (" + key +
                          ": false, or the body is over the proxy's cap)");
    body.data = data;
    body.modified = true;
    return ok();
}

}  // namespace

pipeline::verdict reject_with(const v1::HttpResponse* response, std::string reason) {
    pipeline::verdict v = pipeline::verdict::reject(403, std::move(reason));
    if (response == nullptr) return v;
    if (response->status_code() >= 200 && response->status_code() <= 599) v.status = response->status_code();
    auto headers = headers_from_map(response->headers());
    if (headers) v.headers = std::move(*headers);  // unusable headers: the status and body still go
    v.body = response->body();
    return v;
}

result<url_parts> parse_url(std::string_view url) {
    if (url.starts_with("http://") || url.starts_with("https://")) url.remove_prefix(url.find("//"));
    if (url.starts_with("//")) {
        const auto end = url.find_first_of("/?", 2);
        url = end == std::string_view::npos ? std::string_view("/") : url.substr(end);
    }
    if (const auto hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
    url_parts parts;
    const auto q = url.find('?');
    parts.raw_path = std::string(url.substr(0, q));
    if (q != std::string_view::npos) parts.raw_query = std::string(url.substr(q + 1));
    if (parts.raw_path.empty()) parts.raw_path = "/";
    if (parts.raw_path[0] != '/') return make_error("url path must start with /");
    if (!printable(parts.raw_path) || !printable(parts.raw_query)) return make_error("url has a control character or space");
    auto decoded = decode(parts.raw_path);
    if (!decoded) return make_error("url path has a malformed escape");
    if (has_dot_segment(*decoded)) return make_error("url path has a dot segment");
    parts.decoded_path = std::move(*decoded);
    return parts;
}

result<void> apply_request_changes(pipeline::exchange& ex, const v1::HttpRequest& changes) {
    // Everything is checked before anything changes.
    if (!changes.method().empty() && !is_method_token(changes.method()))
        return make_error("modified_request.method is not a method");
    std::optional<url_parts> url;
    if (!changes.url().empty()) {
        auto parsed = parse_url(changes.url());
        if (!parsed) return make_error("modified_request." + parsed.message());
        url = std::move(*parsed);
    }
    std::optional<core::header_list> headers;
    if (!changes.headers().empty()) {
        auto parsed = headers_from_map(changes.headers());
        if (!parsed) return make_error("modified_request.headers: " + parsed.message());
        headers = keep_owned(std::move(*parsed), ex.request_headers);
    }
    if (!changes.body().empty())
        if (auto r = replace_body(ex.request_body, changes.body(), "modified_request", "send_request_body"); !r) return r;
    if (!changes.method().empty()) ex.method = changes.method();
    if (url) {
        ex.raw_path = std::move(url->raw_path);
        ex.raw_query = std::move(url->raw_query);
        ex.path = std::move(url->decoded_path);
    }
    if (headers) ex.request_headers = std::move(*headers);
    if (!changes.host().empty() && !core::iequals(changes.host(), ex.host)) ex.note("host_ignored", boost::json::value(changes.host()));
    return ok();
}

result<void> apply_response_changes(pipeline::exchange& ex, const v1::HttpResponse& changes) {
    const int status = changes.status_code();
    if (status != 0 && (status < 200 || status > 599)) return make_error("modified_response.status_code is not a final status");
    std::optional<core::header_list> headers;
    if (!changes.headers().empty()) {
        auto parsed = headers_from_map(changes.headers());
        if (!parsed) return make_error("modified_response.headers: " + parsed.message());
        headers = keep_owned(std::move(*parsed), ex.response_headers);
    }
    if (!changes.body().empty())
        if (auto r = replace_body(ex.response_body, changes.body(), "modified_response", "send_response_body"); !r) return r;
    if (status != 0) ex.status = status;
    if (headers) ex.response_headers = std::move(*headers);
    return ok();
}

}  // namespace iron::transforms::grpcsvc
