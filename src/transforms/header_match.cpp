#include "transforms/header_match.hpp"

#include "config/yaml_util.hpp"
#include "core/header_name.hpp"
#include "core/headers.hpp"

namespace iron::transforms {

result<std::vector<header_pattern>> parse_header_patterns(const YAML::Node& list, const config::yaml_ctx& ctx) {
    auto names = config::get_string_list(list, ctx);
    if (!names) return names.err();
    std::vector<header_pattern> out;
    out.reserve(names->size());
    for (std::size_t i = 0; i < names->size(); ++i) {
        const std::string& s = (*names)[i];
        header_pattern p;
        p.source = s;
        if (s.size() >= 2 && s.front() == '/' && s.back() == '/') {
            // Compiled once at config time; an invalid pattern fails the config, never a request.
            try {
                p.re = std::regex(s.substr(1, s.size() - 2), std::regex::ECMAScript | std::regex::icase);
            } catch (const std::regex_error& e) {
                return ctx.index(i).fail(list[i], "invalid regex " + config::go_quote(s) + ": " + e.what());
            }
            p.is_regex = true;
        } else {
            if (s.empty()) return ctx.index(i).fail(list[i], "header name must not be empty");
            p.literal = s;
        }
        out.push_back(std::move(p));
    }
    return out;
}

bool header_matches(const header_pattern& p, std::string_view name) {
    if (!p.is_regex) return core::iequals(p.literal, name);
    // Unanchored search like Go's MatchString; header names are short, so the cost is bounded.
    const std::string canonical = core::canonical_header_name(name);
    try {
        return std::regex_search(canonical, p.re);
    } catch (const std::regex_error&) {
        return false;  // pathological backtracking: treat as no match rather than throw mid-request
    }
}

bool header_matches_any(const std::vector<header_pattern>& ps, std::string_view name) {
    for (const auto& p : ps) {
        if (header_matches(p, name)) return true;
    }
    return false;
}

bool is_framing_or_host(std::string_view name) {
    return core::iequals(name, "Host") || core::iequals(name, "Content-Length") ||
           core::iequals(name, "Transfer-Encoding");
}

}  // namespace iron::transforms
