#include "core/percent.hpp"

namespace iron::core {

int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

namespace {

// The byte an escape at s[i] stands for, or -1 when s[i] does not start a valid %XX.
int escaped_byte(std::string_view s, std::size_t i) {
    if (s[i] != '%' || i + 2 >= s.size()) return -1;
    const int hi = hex_digit_value(s[i + 1]);
    const int lo = hex_digit_value(s[i + 2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (const int b = escaped_byte(s, i); b >= 0) {
            out.push_back(static_cast<char>(b));
            i += 2;
        } else {
            out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
        }
    }
    return out;
}

std::optional<std::string> percent_decode_strict(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        const int b = escaped_byte(s, i);
        if (b < 0) return std::nullopt;
        out.push_back(static_cast<char>(b));
        i += 2;
    }
    return out;
}

std::string percent_encode(std::string_view s, bool keep_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '_' || c == '.' || c == '~';
        if (unreserved || (keep_slash && c == '/')) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

}  // namespace iron::core
