#include "core/host_glob.hpp"

#include <cstdint>

namespace iron::core {
namespace {

constexpr char32_t rune_error = 0xFFFD;

// Decode one UTF-8 rune exactly like Go's utf8.DecodeRuneInString: invalid, overlong, surrogate or
// out-of-range sequences yield (U+FFFD, 1). `s` must be non-empty.
std::pair<char32_t, std::size_t> decode_rune(std::string_view s) {
    auto b0 = static_cast<unsigned char>(s[0]);
    if (b0 < 0x80) return {b0, 1};
    std::size_t n = 0;
    char32_t r = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) { n = 2; r = b0 & 0x1F; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { n = 3; r = b0 & 0x0F; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { n = 4; r = b0 & 0x07; min = 0x10000; }
    else return {rune_error, 1};
    if (s.size() < n) return {rune_error, 1};
    for (std::size_t i = 1; i < n; ++i) {
        auto b = static_cast<unsigned char>(s[i]);
        if ((b & 0xC0) != 0x80) return {rune_error, 1};
        r = (r << 6) | (b & 0x3F);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return {rune_error, 1};
    return {r, n};
}

// The remainder of the algorithm mirrors Go's path.Match (scanChunk / matchChunk / getEsc) so that
// globs written for the Go proxy behave identically, including which patterns are malformed.
struct chunk_scan {
    bool star = false;
    std::string_view chunk;
    std::string_view rest;
};

chunk_scan scan_chunk(std::string_view pattern) {
    chunk_scan out;
    while (!pattern.empty() && pattern[0] == '*') {
        pattern.remove_prefix(1);
        out.star = true;
    }
    bool in_range = false;
    std::size_t i = 0;
    for (; i < pattern.size(); ++i) {
        char c = pattern[i];
        if (c == '\\') {
            if (i + 1 < pattern.size()) ++i;  // a trailing '\' is reported by match_chunk
        } else if (c == '[') {
            in_range = true;
        } else if (c == ']') {
            in_range = false;
        } else if (c == '*' && !in_range) {
            break;
        }
    }
    out.chunk = pattern.substr(0, i);
    out.rest = pattern.substr(i);
    return out;
}

// One (possibly escaped) rune of a character class. Returns false on a malformed class.
bool get_esc(std::string_view& chunk, char32_t& r) {
    if (chunk.empty() || chunk[0] == '-' || chunk[0] == ']') return false;
    if (chunk[0] == '\\') {
        chunk.remove_prefix(1);
        if (chunk.empty()) return false;
    }
    auto [rr, n] = decode_rune(chunk);
    r = rr;
    bool bad = (rr == rune_error && n == 1);
    chunk.remove_prefix(n);
    if (chunk.empty()) bad = true;  // the class was never closed
    return !bad;
}

enum class chunk_result { match, no_match, bad_pattern };

// Match `chunk` against a prefix of `s`; on match `s` becomes the unmatched remainder. After a
// mismatch the chunk is still walked to the end so malformed patterns are always detected.
chunk_result match_chunk(std::string_view chunk, std::string_view& s_io) {
    std::string_view s = s_io;
    bool failed = false;
    while (!chunk.empty()) {
        if (!failed && s.empty()) failed = true;
        switch (chunk[0]) {
            case '[': {
                char32_t r = 0;
                if (!failed) {
                    auto [rr, n] = decode_rune(s);
                    r = rr;
                    s.remove_prefix(n);
                }
                chunk.remove_prefix(1);
                bool negated = false;
                if (!chunk.empty() && chunk[0] == '^') {
                    negated = true;
                    chunk.remove_prefix(1);
                }
                bool match = false;
                int nrange = 0;
                for (;;) {
                    if (!chunk.empty() && chunk[0] == ']' && nrange > 0) {
                        chunk.remove_prefix(1);
                        break;
                    }
                    char32_t lo = 0, hi = 0;
                    if (!get_esc(chunk, lo)) return chunk_result::bad_pattern;
                    hi = lo;
                    if (chunk[0] == '-') {
                        chunk.remove_prefix(1);
                        if (!get_esc(chunk, hi)) return chunk_result::bad_pattern;
                    }
                    if (lo <= r && r <= hi) match = true;
                    ++nrange;
                }
                if (match == negated) failed = true;
                break;
            }
            case '?':
                if (!failed) {
                    if (s[0] == '/') failed = true;
                    s.remove_prefix(decode_rune(s).second);
                }
                chunk.remove_prefix(1);
                break;
            case '\\':
                chunk.remove_prefix(1);
                if (chunk.empty()) return chunk_result::bad_pattern;
                [[fallthrough]];
            default:
                if (!failed) {
                    if (chunk[0] != s[0]) failed = true;
                    s.remove_prefix(1);
                }
                chunk.remove_prefix(1);
                break;
        }
    }
    if (failed) return chunk_result::no_match;
    s_io = s;
    return chunk_result::match;
}

// Go's path.Match: returns no_match / match / bad_pattern.
chunk_result go_path_match(std::string_view pattern, std::string_view name) {
    while (!pattern.empty()) {
        chunk_scan sc = scan_chunk(pattern);
        pattern = sc.rest;
        if (sc.star && sc.chunk.empty()) {
            // A trailing '*' matches the rest of the name unless it contains '/'.
            return name.find('/') == std::string_view::npos ? chunk_result::match : chunk_result::no_match;
        }
        std::string_view t = name;
        chunk_result r = match_chunk(sc.chunk, t);
        if (r == chunk_result::match && (t.empty() || !pattern.empty())) {
            name = t;
            continue;
        }
        if (r == chunk_result::bad_pattern) return r;
        bool advanced = false;
        if (sc.star) {
            // Let the star swallow 1..n more bytes, never crossing '/'.
            for (std::size_t i = 0; i < name.size() && name[i] != '/'; ++i) {
                std::string_view t2 = name.substr(i + 1);
                chunk_result r2 = match_chunk(sc.chunk, t2);
                if (r2 == chunk_result::match) {
                    if (pattern.empty() && !t2.empty()) continue;  // last chunk must consume all
                    name = t2;
                    advanced = true;
                    break;
                }
                if (r2 == chunk_result::bad_pattern) return r2;
            }
        }
        if (advanced) continue;
        // No match: still report a malformed remainder, as Go does.
        while (!pattern.empty()) {
            chunk_scan rest = scan_chunk(pattern);
            pattern = rest.rest;
            std::string_view empty;
            if (match_chunk(rest.chunk, empty) == chunk_result::bad_pattern) return chunk_result::bad_pattern;
        }
        return chunk_result::no_match;
    }
    return name.empty() ? chunk_result::match : chunk_result::no_match;
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string normalize_host(std::string_view host) {
    std::string out;
    out.reserve(host.size());
    for (char c : host) out.push_back(ascii_lower(c));
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

std::string_view strip_port(std::string_view authority) {
    if (!authority.empty() && authority[0] == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return authority;  // malformed: leave as is
        return authority.substr(1, close - 1);
    }
    auto colon = authority.find(':');
    if (colon == std::string_view::npos) return authority;
    // More than one ':' without brackets is a bare IPv6 literal, not host:port.
    if (authority.find(':', colon + 1) != std::string_view::npos) return authority;
    return authority.substr(0, colon);
}

host_port split_host_port(std::string_view authority) {
    host_port out;
    if (!authority.empty() && authority[0] == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) {
            out.host = std::string(authority);
            return out;
        }
        out.host = std::string(authority.substr(1, close - 1));
        auto rest = authority.substr(close + 1);
        if (!rest.empty() && rest[0] == ':') out.port = std::string(rest.substr(1));
        return out;
    }
    auto colon = authority.find(':');
    if (colon == std::string_view::npos || authority.find(':', colon + 1) != std::string_view::npos) {
        out.host = std::string(authority);
        return out;
    }
    out.host = std::string(authority.substr(0, colon));
    out.port = std::string(authority.substr(colon + 1));
    return out;
}

bool path_match(std::string_view pattern, std::string_view name) {
    return go_path_match(pattern, name) == chunk_result::match;
}

bool valid_glob(std::string_view pattern) {
    return go_path_match(pattern, "") != chunk_result::bad_pattern;
}

bool match_host_glob(std::string_view pattern, std::string_view host) {
    if (pattern == "*") return true;
    if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
        // "*.x.com": the apex "x.com" and every subdomain depth. The suffix is literal (as in Go).
        std::string_view suffix = pattern.substr(1);  // ".x.com"
        if (host == pattern.substr(2)) return true;
        return host.size() >= suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
    }
    return path_match(pattern, host);
}

bool match_path_rule(std::string_view pattern, std::string_view path) {
    if (pattern.size() >= 2 && pattern.substr(pattern.size() - 2) == "/*") {
        std::string_view prefix = pattern.substr(0, pattern.size() - 2);
        if (path == prefix) return true;
        return path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix && path[prefix.size()] == '/';
    }
    return path_match(pattern, path);
}

}  // namespace iron::core
