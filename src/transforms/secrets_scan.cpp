#include "transforms/secrets_scan.hpp"

namespace iron::transforms::scan {
namespace {

constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char k_hex[] = "0123456789ABCDEF";

int b64_index(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}


bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

bool is_path_literal(unsigned char c) {
    if (is_unreserved(c)) return true;
    switch (c) {
        case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+': case ',': case ';':
        case '=': case ':': case '@': case '/':
            return true;
        default:
            return false;
    }
}

template <class Keep>
std::string escape(std::string_view s, Keep keep) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (keep(c)) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(k_hex[c >> 4]);
            out.push_back(k_hex[c & 0xF]);
        }
    }
    return out;
}

// One `&`-separated component of a query: [begin, end) in the raw string, '=' at eq (or npos).
struct component {
    std::size_t begin, end, eq;
};

std::vector<component> split_query(std::string_view q) {
    std::vector<component> out;
    std::size_t pos = 0;
    while (pos <= q.size()) {
        std::size_t amp = q.find('&', pos);
        if (amp == std::string_view::npos) amp = q.size();
        std::size_t eq = q.substr(pos, amp - pos).find('=');
        out.push_back({pos, amp, eq == std::string_view::npos ? std::string_view::npos : pos + eq});
        pos = amp + 1;
    }
    return out;
}

}  // namespace

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out.push_back(k_b64[(n >> 18) & 63]);
        out.push_back(k_b64[(n >> 12) & 63]);
        out.push_back(k_b64[(n >> 6) & 63]);
        out.push_back(k_b64[n & 63]);
    }
    if (i + 1 == in.size()) {
        unsigned n = static_cast<unsigned char>(in[i]) << 16;
        out.push_back(k_b64[(n >> 18) & 63]);
        out.push_back(k_b64[(n >> 12) & 63]);
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out.push_back(k_b64[(n >> 18) & 63]);
        out.push_back(k_b64[(n >> 12) & 63]);
        out.push_back(k_b64[(n >> 6) & 63]);
        out.push_back('=');
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    if (in.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        int pad = 0;
        if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
        unsigned n = 0;
        for (int k = 0; k < 4 - pad; ++k) {
            int v = b64_index(in[i + static_cast<std::size_t>(k)]);
            if (v < 0) return std::nullopt;
            n |= static_cast<unsigned>(v) << (18 - 6 * k);
        }
        out.push_back(static_cast<char>((n >> 16) & 0xFF));
        if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xFF));
        if (pad < 1) out.push_back(static_cast<char>(n & 0xFF));
    }
    return out;
}

std::string replace_all(std::string_view s, std::string_view token, std::string_view replacement) {
    std::string out;
    if (token.empty()) return std::string(s);
    std::size_t pos = 0;
    while (true) {
        std::size_t hit = s.find(token, pos);
        if (hit == std::string_view::npos) break;
        out.append(s.substr(pos, hit - pos));
        out.append(replacement);
        pos = hit + token.size();
    }
    out.append(s.substr(pos));
    return out;
}

std::string query_escape(std::string_view s) { return escape(s, is_unreserved); }
std::string path_escape(std::string_view s) { return escape(s, is_path_literal); }

std::size_t swap_encoded(std::string& raw, std::string_view token, const std::string* encoded_replacement,
                         bool plus_is_space) {
    if (token.empty()) return 0;
    // Decode while remembering where each decoded byte starts in `raw`, so a hit in the decoded
    // text maps back to an exact raw span whatever mix of escaped and literal bytes spelled it.
    std::string decoded;
    std::vector<std::size_t> start;
    decoded.reserve(raw.size());
    start.reserve(raw.size() + 1);
    for (std::size_t i = 0; i < raw.size();) {
        start.push_back(i);
        const int hi = raw[i] == '%' && i + 2 < raw.size() ? core::hex_digit_value(raw[i + 1]) : -1;
        const int lo = hi >= 0 ? core::hex_digit_value(raw[i + 2]) : -1;
        if (lo >= 0) {
            decoded.push_back(static_cast<char>(hi * 16 + lo));
            i += 3;
        } else {
            decoded.push_back(plus_is_space && raw[i] == '+' ? ' ' : raw[i]);
            ++i;
        }
    }
    start.push_back(raw.size());

    std::size_t count = 0, pos = 0, raw_pos = 0;
    std::string out;
    while ((pos = decoded.find(token, pos)) != std::string::npos) {
        ++count;
        if (encoded_replacement != nullptr) {
            out.append(raw, raw_pos, start[pos] - raw_pos);
            out += *encoded_replacement;
            raw_pos = start[pos + token.size()];
        }
        pos += token.size();
    }
    if (encoded_replacement != nullptr && count > 0) {
        out.append(raw, raw_pos, std::string::npos);
        raw = std::move(out);
    }
    return count;
}

std::vector<std::string> swap_in_query(std::string& raw_query, std::string_view token, const std::string* secret) {
    std::vector<std::string> keys;
    if (raw_query.empty()) return keys;
    const std::string encoded = secret != nullptr ? query_escape(*secret) : std::string();
    std::string out;
    bool changed = false;
    const auto parts = split_query(raw_query);
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& c = parts[i];
        if (i > 0) out.push_back('&');
        std::string_view whole(raw_query.data() + c.begin, c.end - c.begin);
        if (c.eq == std::string::npos) {  // "flag" without '=': no value to scan
            out.append(whole);
            continue;
        }
        std::string value = raw_query.substr(c.eq + 1, c.end - c.eq - 1);
        std::size_t n = swap_encoded(value, token, secret != nullptr ? &encoded : nullptr, true);
        if (n > 0) {
            keys.push_back(percent_decode(std::string_view(raw_query).substr(c.begin, c.eq - c.begin), true));
            changed = true;
        }
        out.append(raw_query, c.begin, c.eq + 1 - c.begin);
        out += value;
    }
    if (changed && secret != nullptr) raw_query = std::move(out);
    return keys;
}

void set_query_param(std::string& raw_query, std::string_view key, std::string_view value) {
    std::vector<std::string> pieces;
    bool placed = false;
    if (!raw_query.empty()) {
        for (const auto& c : split_query(raw_query)) {
            std::size_t key_end = c.eq == std::string::npos ? c.end : c.eq;
            std::string_view raw_key(raw_query.data() + c.begin, key_end - c.begin);
            if (percent_decode(raw_key, true) != key) {
                pieces.emplace_back(raw_query, c.begin, c.end - c.begin);
                continue;
            }
            if (placed) continue;  // later duplicates dropped, like url.Values.Set
            placed = true;
            pieces.push_back(std::string(raw_key) + "=" + query_escape(value));
        }
    }
    if (!placed) pieces.push_back(query_escape(key) + "=" + query_escape(value));
    std::string out;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        if (i > 0) out.push_back('&');
        out += pieces[i];
    }
    raw_query = std::move(out);
}

bool swap_in_header_value(bool is_authorization, std::string& value, std::string_view token, const std::string* secret) {
    constexpr std::string_view basic = "Basic ";
    if (is_authorization && value.compare(0, basic.size(), basic) == 0) {
        if (auto decoded = base64_decode(std::string_view(value).substr(basic.size()))) {
            if (decoded->find(token) == std::string::npos) return false;  // raw value not searched (Go)
            if (secret != nullptr) value = std::string(basic) + base64_encode(replace_all(*decoded, token, *secret));
            return true;
        }
    }
    if (value.find(token) == std::string::npos) return false;
    if (secret != nullptr) value = replace_all(value, token, *secret);
    return true;
}

bool has_header_breaking_bytes(std::string_view s) {
    for (char c : s) {
        if (c == '\r' || c == '\n' || c == '\0') return true;
    }
    return false;
}

}  // namespace iron::transforms::scan
