#include "h2/headers.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace iron::h2 {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// HTTP/2 names arrive lower-case; the pipeline and HTTP/1.1 peers see them in canonical form
// ("Content-Type"), as Go's HTTP/2 server does (CanonicalMIMEHeaderKey). Names with capitals
// are left alone.
std::string h1_name(std::string_view name) {
    std::string out(name);
    for (char c : out)
        if (c >= 'A' && c <= 'Z') return out;
    bool start = true;
    for (char& c : out) {
        if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        start = c == '-';
    }
    return out;
}

}  // namespace

bool is_connection_specific(std::string_view name, std::string_view value) {
    static constexpr std::string_view always[] = {"connection",          "keep-alive",         "proxy-connection",
                                                  "transfer-encoding",   "upgrade",            "proxy-authorization",
                                                  "proxy-authenticate"};
    for (auto n : always)
        if (core::iequals(name, n)) return true;
    if (core::iequals(name, "te")) return !core::iequals(trim(value), "trailers");
    return false;
}

core::header_list to_header_list(const header_block& block) {
    core::header_list out;
    for (const auto& h : block)
        if (!h.name.empty() && h.name[0] != ':') out.add(h1_name(h.name), h.value);
    return out;
}

void append_h2_fields(const core::header_list& headers, header_block& out) {
    for (const auto& e : headers.entries()) {
        if (is_connection_specific(e.name, e.value) || core::iequals(e.name, "host")) continue;
        out.push_back(header{lower(e.name), e.value});
    }
}

void set_h1_fields(const core::header_list& headers, boost::beast::http::fields& out) {
    std::string cookies;
    for (const auto& e : headers.entries()) {
        if (core::iequals(e.name, "cookie")) {
            if (!cookies.empty()) cookies += "; ";
            cookies += e.value;
            continue;
        }
        if (is_connection_specific(e.name, e.value) || core::iequals(e.name, "te") || core::iequals(e.name, "host"))
            continue;  // Host is set from :authority by the caller
        out.insert(e.name, e.value);
    }
    if (!cookies.empty()) out.insert("Cookie", cookies);
}

namespace {

template <class Fields>
void append_h1_response_fields_of(const Fields& in, header_block& out) {
    // Names listed in Connection are hop-by-hop too (RFC 9110 §7.6.1).
    std::vector<std::string> listed;
    for (const auto& f : in) {
        if (!core::iequals(f.name_string(), "connection")) continue;
        std::string_view v = f.value();
        while (!v.empty()) {
            auto comma = v.find(',');
            auto token = trim(v.substr(0, comma));
            if (!token.empty()) listed.push_back(lower(token));
            v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
        }
    }
    for (const auto& f : in) {
        std::string name = lower(f.name_string());
        if (is_connection_specific(name, f.value()) || name == "te" || name == "trailer") continue;
        if (std::find(listed.begin(), listed.end(), name) != listed.end()) continue;
        out.push_back(header{std::move(name), std::string(f.value())});
    }
}

}  // namespace

void append_h1_response_fields(const boost::beast::http::fields& in, header_block& out) {
    append_h1_response_fields_of(in, out);
}

void append_h1_response_fields(const http::proxy_fields& in, header_block& out) {
    append_h1_response_fields_of(in, out);
}

}  // namespace iron::h2
