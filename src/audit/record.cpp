#include "audit/record.hpp"

#include "core/clock.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

namespace iron::audit {
namespace {

namespace json = boost::json;

// Length of the valid UTF-8 sequence at the start of `s` (1..4), or 0 if it is invalid (overlong,
// surrogate, beyond U+10FFFF, truncated) — the same rules as Go's utf8.DecodeRuneInString.
std::size_t valid_utf8_len(std::string_view s, char32_t& r) {
    auto b0 = static_cast<unsigned char>(s[0]);
    std::size_t n = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) { n = 2; r = b0 & 0x1F; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { n = 3; r = b0 & 0x0F; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { n = 4; r = b0 & 0x07; min = 0x10000; }
    else return 0;
    if (s.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i) {
        auto b = static_cast<unsigned char>(s[i]);
        if ((b & 0xC0) != 0x80) return 0;
        r = (r << 6) | (b & 0x3F);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return 0;
    return n;
}

// A JSON string the way Go's encoding/json (and so slog) writes it: no HTML escaping, short escapes
// for \n \r \t, \u00XX for other controls, \u2028/\u2029 escaped, and every invalid UTF-8 byte
// replaced by \ufffd. Bytes from the network therefore can never produce an invalid JSON line.
void append_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        // A run of bytes that need no escaping goes in one append.
        std::size_t run = i;
        while (run < s.size()) {
            const auto b = static_cast<unsigned char>(s[run]);
            if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
            ++run;
        }
        if (run > i) {
            out.append(s.data() + i, run - i);
            i = run;
            if (i == s.size()) break;
        }
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (c < 0x20) {
                        out += "\\u00";
                        out.push_back(hex[c >> 4]);
                        out.push_back(hex[c & 0xF]);
                    } else {
                        out.push_back(static_cast<char>(c));
                    }
            }
            ++i;
            continue;
        }
        char32_t r = 0;
        std::size_t n = valid_utf8_len(s.substr(i), r);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            out += (r == 0x2028) ? "\\u2028" : "\\u2029";
        } else {
            out.append(s.data() + i, n);
        }
        i += n;
    }
    out.push_back('"');
}

// Go's encoding/json float format: shortest round-trip digits, plain decimal for
// 1e-6 <= |f| < 1e21, exponent form otherwise with "e-07" shortened to "e-7".
void append_double(std::string& out, double f) {
    if (!std::isfinite(f)) {
        out += "null";  // Go would refuse to encode; null keeps the line valid JSON
        return;
    }
    char buf[64];
    double a = std::fabs(f);
    if (a < 1e9) {
        // Durations are whole microseconds / 1000: when f is exactly n/1000, the decimal n/1000
        // with trailing zeros trimmed is the shortest round-trip form (what to_chars would find,
        // at a fraction of the cost). Anything else takes the general path.
        const double scaled = f * 1000.0;
        const auto n = static_cast<long long>(std::llround(scaled));
        if (static_cast<double>(n) == scaled && static_cast<double>(n) / 1000.0 == f && !(n == 0 && std::signbit(f))) {
            long long whole = n / 1000;
            long long frac = n % 1000;
            if (n < 0) {
                out.push_back('-');
                whole = -whole;
                frac = -frac;
            }
            auto r = std::to_chars(buf, buf + sizeof buf, whole);
            out.append(buf, r.ptr);
            if (frac != 0) {
                char d[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                             static_cast<char>('0' + frac % 10)};
                std::size_t len = 4;
                while (d[len - 1] == '0') --len;
                out.append(d, len);
            }
            return;
        }
    }
    std::to_chars_result res{};
    bool exp_form = a != 0 && (a < 1e-6 || a >= 1e21);
    if (exp_form) {
        res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    } else {
        res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed);
    }
    std::string_view s(buf, static_cast<std::size_t>(res.ptr - buf));
    if (exp_form) {
        std::size_t n = s.size();
        if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
            out.append(s.substr(0, n - 2));
            out.push_back(s[n - 1]);
            return;
        }
    }
    out.append(s);
}

// `"key":` — keys are ASCII constants, nothing to escape.
void append_key(std::string& out, std::string_view key) {
    out.push_back('"');
    out.append(key);
    out += "\":";
}

void append_traces(std::string& out, const std::vector<trace>& traces) {
    out.push_back('[');
    bool first = true;
    for (const auto& t : traces) {
        if (!first) out.push_back(',');
        first = false;
        out.push_back('{');
        append_key(out, "name");
        append_string(out, t.name);
        out.push_back(',');
        append_key(out, "action");
        append_string(out, to_string(t.action));
        out.push_back(',');
        append_key(out, "duration_ms");
        append_double(out, t.duration_ms);
        if (!t.error.empty()) {
            out.push_back(',');
            append_key(out, "error");
            append_string(out, t.error);
        }
        if (!t.annotations.empty()) {
            out.push_back(',');
            append_key(out, "annotations");
            append_json(out, t.annotations);
        }
        out.push_back('}');
    }
    out.push_back(']');
}

}  // namespace

const char* to_string(trace_action a) {
    switch (a) {
        case trace_action::allow: return "allow";
        case trace_action::reject: return "reject";
        case trace_action::stub: return "stub";
        case trace_action::error: return "error";
    }
    return "allow";
}

void record::finish() {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    duration_ms = static_cast<double>(us.count()) / 1000.0;
}

const char* level_for(const record& r) {
    if (r.action == action::error) return "ERROR";
    if (r.action == action::reject) return "WARN";
    return "INFO";
}

void append_json(std::string& out, const boost::json::value& v) {
    switch (v.kind()) {
        case json::kind::null: out += "null"; break;
        case json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
        case json::kind::int64: out += std::to_string(v.get_int64()); break;
        case json::kind::uint64: out += std::to_string(v.get_uint64()); break;
        case json::kind::double_: append_double(out, v.get_double()); break;
        case json::kind::string: append_string(out, v.get_string()); break;
        case json::kind::array: {
            out.push_back('[');
            bool first = true;
            for (const auto& e : v.get_array()) {
                if (!first) out.push_back(',');
                first = false;
                append_json(out, e);
            }
            out.push_back(']');
            break;
        }
        case json::kind::object: {
            out.push_back('{');
            bool first = true;
            for (const auto& kv : v.get_object()) {
                if (!first) out.push_back(',');
                first = false;
                append_string(out, kv.key());
                out.push_back(':');
                append_json(out, kv.value());
            }
            out.push_back('}');
            break;
        }
    }
}

void serialize_to(std::string& out, const record& r) {
    // Written straight into `out` in the §9.2 key order (no intermediate JSON objects: this runs
    // once per request). The string forms are those of append_json.
    auto field = [&out](std::string_view key, std::string_view value, bool comma = true) {
        if (comma) out.push_back(',');
        append_key(out, key);
        append_string(out, value);
    };
    out.push_back('{');
    field("time", core::rfc3339_nano(r.time), false);
    field("level", level_for(r));
    field("msg", "request");
    out.push_back(',');
    append_key(out, "audit");
    out.push_back('{');
    field("host", r.host, false);
    field("method", r.method);
    field("path", r.path);
    field("remote_addr", r.remote_addr);
    field("sni", r.sni);
    field("mode", r.mode);
    field("action", r.action);
    out.push_back(',');
    append_key(out, "status_code");
    char num[16];
    auto res = std::to_chars(num, num + sizeof num, r.status_code);
    out.append(num, res.ptr);
    out.push_back(',');
    append_key(out, "duration_ms");
    append_double(out, r.duration_ms);
    out.push_back('}');
    if (r.tunnel) {
        out.push_back(',');
        append_key(out, "tunnel");
        out.push_back('{');
        field("target", r.tunnel->target, false);
        if (!r.tunnel->request_transforms.empty()) {
            out.push_back(',');
            append_key(out, "request_transforms");
            append_traces(out, r.tunnel->request_transforms);
        }
        out.push_back('}');
    }
    if (!r.rejected_by.empty()) field("rejected_by", r.rejected_by);
    if (!r.stubbed_by.empty()) field("stubbed_by", r.stubbed_by);
    if (!r.error.empty()) field("error", r.error);
    if (!r.request_transforms.empty()) {
        out.push_back(',');
        append_key(out, "request_transforms");
        append_traces(out, r.request_transforms);
    }
    if (!r.response_transforms.empty()) {
        out.push_back(',');
        append_key(out, "response_transforms");
        append_traces(out, r.response_transforms);
    }
    // §9.2 puts `mcp` here (not implemented yet), then body_capture.
    if (r.body_capture) {
        out.push_back(',');
        append_key(out, "body_capture");
        append_json(out, *r.body_capture);
    }
    out.push_back('}');
}

std::string serialize(const record& r) {
    std::string out;
    out.reserve(512);
    serialize_to(out, r);
    return out;
}

}  // namespace iron::audit
