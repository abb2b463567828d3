#include "audit/record.hpp"

#include "core/clock.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

namespace iron::audit {
namespace {

namespace json = boost::json;

// Where the serializer writes: a cursor into a per-thread buffer that grows on demand, so each
// piece costs one bounds check and a copy. Writing through std::string's push_back/append (not
// inlined, bookkeeping on every call) was most of the ~10,000 instructions a record cost, and a
// record is serialised for every request (callgrind, docs/performance.md).
class json_buffer {
public:
    void clear() noexcept { p_ = data_.get(); }
    std::string_view view() const noexcept { return {data_.get(), size()}; }
    std::size_t capacity() const noexcept { return static_cast<std::size_t>(end_ - data_.get()); }

    void put(char c) {
        room(1);
        *p_++ = c;
    }
    void put(std::string_view s) {
        room(s.size());
        if (!s.empty()) std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
    }

private:
    std::size_t size() const noexcept { return static_cast<std::size_t>(p_ - data_.get()); }
    void room(std::size_t n) {
        if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
    }
    void grow(std::size_t n) {
        const std::size_t used = size();
        const std::size_t cap = std::max({std::size_t{1024}, 2 * capacity(), used + n});
        auto fresh = std::make_unique_for_overwrite<char[]>(cap);
        if (used > 0) std::memcpy(fresh.get(), data_.get(), used);
        data_ = std::move(fresh);
        p_ = data_.get() + used;
        end_ = data_.get() + cap;
    }

    std::unique_ptr<char[]> data_;
    char* p_ = nullptr;
    char* end_ = nullptr;
};

// The calling thread's json_buffer, cleared (the serializer is not re-entered on a thread).
// hand_over appends the text to `out` and drops a buffer that a huge record made large.
json_buffer& scratch() {
    thread_local json_buffer buf;
    buf.clear();
    return buf;
}
void hand_over(json_buffer& buf, std::string& out) {
    out.append(buf.view());
    if (buf.capacity() > 64 * 1024) buf = json_buffer();
}

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
void append_string(json_buffer& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.put('"');
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
            out.put(s.substr(i, run - i));
            i = run;
            if (i == s.size()) break;
        }
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"': out.put("\\\""); break;
                case '\\': out.put("\\\\"); break;
                case '\n': out.put("\\n"); break;
                case '\r': out.put("\\r"); break;
                case '\t': out.put("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.put("\\u00");
                        out.put(hex[c >> 4]);
                        out.put(hex[c & 0xF]);
                    } else {
                        out.put(static_cast<char>(c));
                    }
            }
            ++i;
            continue;
        }
        char32_t r = 0;
        std::size_t n = valid_utf8_len(s.substr(i), r);
        if (n == 0) {
            out.put("\\ufffd");
            ++i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            out.put((r == 0x2028) ? "\\u2028" : "\\u2029");
        } else {
            out.put(s.substr(i, n));
        }
        i += n;
    }
    out.put('"');
}

// Go's encoding/json float format: shortest round-trip digits, plain decimal for
// 1e-6 <= |f| < 1e21, exponent form otherwise with "e-07" shortened to "e-7".
void append_double(json_buffer& out, double f) {
    if (!std::isfinite(f)) {
        out.put("null");  // Go would refuse to encode; null keeps the line valid JSON
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
                out.put('-');
                whole = -whole;
                frac = -frac;
            }
            auto r = std::to_chars(buf, buf + sizeof buf, whole);
            out.put(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
            if (frac != 0) {
                char d[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                             static_cast<char>('0' + frac % 10)};
                std::size_t len = 4;
                while (d[len - 1] == '0') --len;
                out.put(std::string_view(d, len));
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
            out.put(s.substr(0, n - 2));
            out.put(s[n - 1]);
            return;
        }
    }
    out.put(s);
}

// `"key":` — keys are ASCII constants, nothing to escape.
void append_key(json_buffer& out, std::string_view key) {
    out.put('"');
    out.put(key);
    out.put("\":");
}

void write_json(json_buffer& out, const json::value& v) {
    switch (v.kind()) {
        case json::kind::null: out.put("null"); break;
        case json::kind::bool_: out.put(v.get_bool() ? "true" : "false"); break;
        case json::kind::int64: out.put(std::to_string(v.get_int64())); break;
        case json::kind::uint64: out.put(std::to_string(v.get_uint64())); break;
        case json::kind::double_: append_double(out, v.get_double()); break;
        case json::kind::string: append_string(out, v.get_string()); break;
        case json::kind::array: {
            out.put('[');
            bool first = true;
            for (const auto& e : v.get_array()) {
                if (!first) out.put(',');
                first = false;
                write_json(out, e);
            }
            out.put(']');
            break;
        }
        case json::kind::object: {
            out.put('{');
            bool first = true;
            for (const auto& kv : v.get_object()) {
                if (!first) out.put(',');
                first = false;
                append_string(out, kv.key());
                out.put(':');
                write_json(out, kv.value());
            }
            out.put('}');
            break;
        }
    }
}

void append_traces(json_buffer& out, const std::vector<trace>& traces) {
    out.put('[');
    bool first = true;
    for (const auto& t : traces) {
        if (!first) out.put(',');
        first = false;
        out.put('{');
        append_key(out, "name");
        append_string(out, t.name);
        out.put(',');
        append_key(out, "action");
        append_string(out, to_string(t.action));
        out.put(',');
        append_key(out, "duration_ms");
        append_double(out, t.duration_ms);
        if (!t.error.empty()) {
            out.put(',');
            append_key(out, "error");
            append_string(out, t.error);
        }
        if (!t.annotations.empty()) {
            out.put(',');
            append_key(out, "annotations");
            write_json(out, t.annotations);
        }
        out.put('}');
    }
    out.put(']');
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

namespace {

void write_record(json_buffer& out, const record& r) {
    // Written straight into `out` in the Go proxy's key order (no intermediate JSON objects: this runs
    // once per request). The string forms are those of append_json.
    auto field = [&out](std::string_view key, std::string_view value, bool comma = true) {
        if (comma) out.put(',');
        append_key(out, key);
        append_string(out, value);
    };
    out.put('{');
    field("time", core::rfc3339_nano(r.time), false);
    field("level", level_for(r));
    field("msg", "request");
    out.put(',');
    append_key(out, "audit");
    out.put('{');
    field("host", r.host, false);
    field("method", r.method);
    field("path", r.path);
    field("remote_addr", r.remote_addr);
    field("sni", r.sni);
    field("mode", r.mode);
    field("action", r.action);
    out.put(',');
    append_key(out, "status_code");
    char num[16];
    auto res = std::to_chars(num, num + sizeof num, r.status_code);
    out.put(std::string_view(num, static_cast<std::size_t>(res.ptr - num)));
    out.put(',');
    append_key(out, "duration_ms");
    append_double(out, r.duration_ms);
    out.put('}');
    if (r.tunnel) {
        out.put(',');
        append_key(out, "tunnel");
        out.put('{');
        field("target", r.tunnel->target, false);
        if (!r.tunnel->request_transforms.empty()) {
            out.put(',');
            append_key(out, "request_transforms");
            append_traces(out, r.tunnel->request_transforms);
        }
        out.put('}');
    }
    if (!r.rejected_by.empty()) field("rejected_by", r.rejected_by);
    if (!r.stubbed_by.empty()) field("stubbed_by", r.stubbed_by);
    if (!r.error.empty()) field("error", r.error);
    if (!r.request_transforms.empty()) {
        out.put(',');
        append_key(out, "request_transforms");
        append_traces(out, r.request_transforms);
    }
    if (!r.response_transforms.empty()) {
        out.put(',');
        append_key(out, "response_transforms");
        append_traces(out, r.response_transforms);
    }
    if (r.mcp) {
        out.put(',');
        append_key(out, "mcp");
        write_json(out, *r.mcp);
    }
    if (r.body_capture) {
        out.put(',');
        append_key(out, "body_capture");
        write_json(out, *r.body_capture);
    }
    out.put('}');
}

}  // namespace

void append_json(std::string& out, const boost::json::value& v) {
    json_buffer& buf = scratch();
    write_json(buf, v);
    hand_over(buf, out);
}

void serialize_to(std::string& out, const record& r) {
    json_buffer& buf = scratch();
    write_record(buf, r);
    hand_over(buf, out);
}

std::string serialize(const record& r) {
    std::string out;
    out.reserve(512);
    serialize_to(out, r);
    return out;
}

}  // namespace iron::audit
