#include "http/messages.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

#include "core/headers.hpp"

namespace iron::http {

namespace http = boost::beast::http;

std::optional<request_target> parse_request_target(std::string_view target) {
    request_target out;
    std::string_view rest = target;
    auto starts_with_ci = [](std::string_view s, std::string_view prefix) {
        return s.size() >= prefix.size() && core::iequals(s.substr(0, prefix.size()), prefix);
    };
    if (starts_with_ci(rest, "http://") || starts_with_ci(rest, "https://")) {
        auto colon = rest.find("://");
        out.scheme = std::string(rest.substr(0, colon));
        std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(), ::tolower);
        rest.remove_prefix(colon + 3);
        auto end = rest.find_first_of("/?#");
        out.authority = std::string(rest.substr(0, end));
        if (out.authority.empty() || out.authority.find('@') != std::string::npos) return std::nullopt;
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    } else if (rest.empty() || rest.front() != '/') {
        return std::nullopt;
    }
    if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
    auto q = rest.find('?');
    out.path = std::string(rest.substr(0, q));
    if (q != std::string_view::npos) out.query = std::string(rest.substr(q + 1));
    if (out.path.empty()) out.path = "/";
    return out;
}

std::optional<std::string> decode_path(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '%') {
            out.push_back(raw[i]);
            continue;
        }
        if (i + 2 >= raw.size()) return std::nullopt;  // truncated escape
        int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        char c = static_cast<char>(hi * 16 + lo);
        if (c == '\0') return std::nullopt;
        out.push_back(c);
        i += 2;
    }
    return out;
}

bool has_dot_segment(std::string_view path) {
    std::size_t start = 0;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        auto seg = path.substr(start, end - start);
        if (seg == "." || seg == "..") return true;
        start = end + 1;
    }
    return false;
}

namespace {

std::vector<std::string> connection_tokens(const http::fields& fields) {
    std::vector<std::string> tokens;
    for (auto it = fields.find(http::field::connection); it != fields.end() && it->name() == http::field::connection; ++it) {
        std::string_view v = it->value();
        std::size_t pos = 0;
        while (pos <= v.size()) {
            auto comma = v.find(',', pos);
            if (comma == std::string_view::npos) comma = v.size();
            auto tok = v.substr(pos, comma - pos);
            while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
            while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
            if (!tok.empty()) tokens.emplace_back(tok);
            pos = comma + 1;
        }
    }
    return tokens;
}

}  // namespace

bool remove_hop_by_hop(http::fields& fields) {
    bool te_trailers = false;
    for (auto it = fields.find(http::field::te); it != fields.end() && it->name() == http::field::te; ++it) {
        std::string v(it->value());
        std::transform(v.begin(), v.end(), v.begin(), ::tolower);
        if (v.find("trailers") != std::string::npos) te_trailers = true;
    }
    for (const auto& tok : connection_tokens(fields)) fields.erase(tok);
    for (auto f : {http::field::connection, http::field::proxy_connection, http::field::keep_alive,
                   http::field::proxy_authenticate, http::field::proxy_authorization, http::field::te,
                   http::field::trailer, http::field::transfer_encoding, http::field::upgrade})
        fields.erase(f);
    return te_trailers;
}

bool is_websocket_upgrade(const http::fields& fields) {
    if (!core::iequals(fields[http::field::upgrade], "websocket")) return false;
    for (const auto& tok : connection_tokens(fields))
        if (core::iequals(tok, "upgrade")) return true;
    return false;
}

core::header_list to_header_list(const http::fields& fields) {
    core::header_list out;
    out.reserve(static_cast<std::size_t>(std::distance(fields.begin(), fields.end())));
    for (const auto& f : fields) out.add(std::string(f.name_string()), std::string(f.value()));
    return out;
}

namespace {

// True when `headers` lists exactly the fields of `fields`, in order: the transforms changed
// nothing, so there is nothing to rebuild. Framing fields may sit anywhere in the list (most
// responses carry Content-Length among the others): a rebuild would keep their values and only
// move them to the end, which no peer can tell apart.
bool same_fields(const http::fields& fields, const core::header_list& headers) {
    auto it = fields.begin();
    for (const auto& e : headers.entries()) {
        if (it == fields.end() || it->name_string() != e.name || it->value() != e.value) return false;
        ++it;
    }
    return it == fields.end();
}

}  // namespace

void replace_fields(http::fields& fields, const core::header_list& headers) {
    if (same_fields(fields, headers)) return;  // the common case: nothing to rebuild
    // Keep the framing fields Beast manages; rebuild the rest in the transforms' order.
    std::vector<std::pair<std::string, std::string>> keep;
    for (const auto& f : fields) {
        if (f.name() == http::field::content_length || f.name() == http::field::transfer_encoding)
            keep.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    fields.clear();
    for (const auto& e : headers.entries()) {
        if (core::iequals(e.name, "Content-Length") || core::iequals(e.name, "Transfer-Encoding")) continue;
        fields.insert(e.name, e.value);
    }
    for (auto& [n, v] : keep) fields.insert(n, v);
}

}  // namespace iron::http
