#include "http/messages.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "core/headers.hpp"
#include "core/host_glob.hpp"
#include "core/port.hpp"

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

std::optional<std::string> check_target_and_host(std::string_view host, const std::optional<request_target>& target,
                                                 std::optional<std::string>& decoded_path) {
    if (!target) return "malformed request target";
    if (host.empty()) return "missing Host header";
    decoded_path = decode_path(target->path);
    if (!decoded_path) return "malformed path";
    if (has_dot_segment(*decoded_path)) return "path contains dot segments";
    auto hp = core::split_host_port(host);
    if (hp.host.empty()) return "missing Host header";
    if (!hp.port.empty() && !core::parse_port(hp.port)) return "invalid port in Host header";
    return std::nullopt;
}

namespace {

// One implementation for both fields types (the overloads at the end of this file).

// The tokens of every Connection field, as views into those fields' values: valid while the
// Connection fields exist.
template <class Fields>
boost::container::small_vector<std::string_view, 4> connection_tokens(const Fields& fields) {
    boost::container::small_vector<std::string_view, 4> tokens;
    for (auto it = fields.find(http::field::connection); it != fields.end() && it->name() == http::field::connection; ++it) {
        std::string_view v = it->value();
        std::size_t pos = 0;
        while (pos <= v.size()) {
            auto comma = v.find(',', pos);
            if (comma == std::string_view::npos) comma = v.size();
            auto tok = v.substr(pos, comma - pos);
            while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
            while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
            if (!tok.empty()) tokens.push_back(tok);
            pos = comma + 1;
        }
    }
    return tokens;
}

bool is_hop_by_hop(http::field f) {
    switch (f) {
        case http::field::connection:
        case http::field::proxy_connection:
        case http::field::keep_alive:
        case http::field::proxy_authenticate:
        case http::field::proxy_authorization:
        case http::field::te:
        case http::field::trailer:
        case http::field::transfer_encoding:
        case http::field::upgrade:
            return true;
        default:
            return false;
    }
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i)
        if (core::iequals(haystack.substr(i, needle.size()), needle)) return true;
    return false;
}

bool listed(const boost::container::small_vector<std::string_view, 4>& tokens, std::string_view name) {
    for (auto tok : tokens)
        if (core::iequals(tok, name)) return true;
    return false;
}

// One walk over the fields with enum comparisons, instead of a name lookup in Beast's set for each
// of the nine hop-by-hop names (~1,500 instructions per message): most requests carry none.
template <class Fields>
bool remove_hop_by_hop_in(Fields& fields) {
    bool any = false;
    bool te_trailers = false;
    for (const auto& f : fields) {
        if (!is_hop_by_hop(f.name())) continue;
        any = true;
        if (f.name() == http::field::te && contains_ci(f.value(), "trailers")) te_trailers = true;
    }
    if (!any) return false;  // no Connection field either, so no field is named in one
    // The names listed in Connection are views into its values, so the Connection fields go last.
    const auto tokens = connection_tokens(fields);
    for (auto it = fields.begin(); it != fields.end();) {
        const bool drop = it->name() != http::field::connection &&
                          (is_hop_by_hop(it->name()) || listed(tokens, it->name_string()));
        if (drop) it = fields.erase(it);
        else ++it;
    }
    fields.erase(http::field::connection);
    return te_trailers;
}

template <class Fields>
bool is_websocket_upgrade_in(const Fields& fields) {
    if (!core::iequals(fields[http::field::upgrade], "websocket")) return false;
    for (const auto& tok : connection_tokens(fields))
        if (core::iequals(tok, "upgrade")) return true;
    return false;
}

template <class Fields>
core::header_list to_header_list_in(const Fields& fields) {
    core::header_list out;
    out.reserve(static_cast<std::size_t>(std::distance(fields.begin(), fields.end())));
    for (const auto& f : fields) out.add(std::string(f.name_string()), std::string(f.value()));
    return out;
}

// True when `headers` lists exactly the fields of `fields`, in order: the transforms changed
// nothing, so there is nothing to rebuild. Framing fields may sit anywhere in the list (most
// responses carry Content-Length among the others): a rebuild would keep their values and only
// move them to the end, which no peer can tell apart.
template <class Fields>
bool same_fields(const Fields& fields, const core::header_list& headers) {
    auto it = fields.begin();
    for (const auto& e : headers.entries()) {
        if (it == fields.end() || it->name_string() != e.name || it->value() != e.value) return false;
        ++it;
    }
    return it == fields.end();
}

template <class Fields>
void replace_fields_in(Fields& fields, const core::header_list& headers) {
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

}  // namespace

// The public overloads, one set per fields type.
#define IRON_FIELDS_FUNCTIONS(Fields)                                                                  \
    bool remove_hop_by_hop(Fields& fields) { return remove_hop_by_hop_in(fields); }                    \
    bool is_websocket_upgrade(const Fields& fields) { return is_websocket_upgrade_in(fields); }        \
    core::header_list to_header_list(const Fields& fields) { return to_header_list_in(fields); }       \
    void replace_fields(Fields& fields, const core::header_list& headers) { replace_fields_in(fields, headers); }

IRON_FIELDS_FUNCTIONS(http::fields)
IRON_FIELDS_FUNCTIONS(proxy_fields)

}  // namespace iron::http
