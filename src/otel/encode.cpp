#include "otel/encode.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

#include <boost/json/value.hpp>

#include "audit/record.hpp"

namespace iron::otel {

namespace {

enum wire_type { varint_type = 0, fixed64_type = 1, len_type = 2 };

// Appends protobuf wire format to a string. Nested messages are written in place: open() leaves a
// one-byte length, close() fixes it (moving the body when the length needs more bytes), so a
// record costs no temporary strings.
class wire {
public:
    explicit wire(std::string& out) : out_(out) {}

    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        out_.push_back(static_cast<char>(v));
    }
    void tag(int field, wire_type t) { varint((static_cast<std::uint64_t>(field) << 3) | t); }
    void string_field(int field, std::string_view s) {
        tag(field, len_type);
        varint(s.size());
        out_.append(s);
    }
    void varint_field(int field, std::uint64_t v) {
        tag(field, varint_type);
        varint(v);
    }
    void fixed64_field(int field, std::uint64_t v) {
        tag(field, fixed64_type);
        for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    void double_field(int field, double d) {
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        fixed64_field(field, bits);
    }
    std::size_t open(int field) {
        tag(field, len_type);
        out_.push_back('\0');
        return out_.size();
    }
    void close(std::size_t body_start) {
        const std::size_t len = out_.size() - body_start;
        if (len < 0x80) {
            out_[body_start - 1] = static_cast<char>(len);
            return;
        }
        char buf[10];
        std::size_t n = 0;
        for (std::size_t v = len; v; v >>= 7) buf[n++] = static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        out_.replace(body_start - 1, 1, buf, n);
    }

private:
    std::string& out_;
};

// AnyValue fields.
constexpr int any_string = 1, any_bool = 2, any_int = 3, any_double = 4, any_array = 5, any_kvlist = 6;

void put_any(wire& w, const boost::json::value& v);

void put_key_value(wire& w, int field, std::string_view key, const boost::json::value& v) {
    const std::size_t kv = w.open(field);
    w.string_field(1, key);
    const std::size_t any = w.open(2);
    put_any(w, v);
    w.close(any);
    w.close(kv);
}

// Annotations become OTEL values the way the Go proxy's JSON normalization makes them: objects
// are kvlists, arrays are arrays, every number is a double (a JSON number), null is an empty value.
void put_any(wire& w, const boost::json::value& v) {
    switch (v.kind()) {
        case boost::json::kind::string: return w.string_field(any_string, std::string_view(v.get_string()));
        case boost::json::kind::bool_: return w.varint_field(any_bool, v.get_bool() ? 1 : 0);
        case boost::json::kind::int64: return w.double_field(any_double, static_cast<double>(v.get_int64()));
        case boost::json::kind::uint64: return w.double_field(any_double, static_cast<double>(v.get_uint64()));
        case boost::json::kind::double_: return w.double_field(any_double, v.get_double());
        case boost::json::kind::null: return;
        case boost::json::kind::array: {
            const std::size_t arr = w.open(any_array);
            for (const auto& item : v.get_array()) {
                const std::size_t one = w.open(1);
                put_any(w, item);
                w.close(one);
            }
            return w.close(arr);
        }
        case boost::json::kind::object: {
            const std::size_t list = w.open(any_kvlist);
            for (const auto& [key, item] : v.get_object()) put_key_value(w, 1, key, item);
            return w.close(list);
        }
    }
}

// KeyValue attributes of a LogRecord (field 6) or a kvlist (field 1) with a scalar value.
void put_string_attr(wire& w, int field, std::string_view key, std::string_view value) {
    const std::size_t kv = w.open(field);
    w.string_field(1, key);
    const std::size_t any = w.open(2);
    w.string_field(any_string, value);  // written even when empty: it is what marks the oneof
    w.close(any);
    w.close(kv);
}

void put_int_attr(wire& w, int field, std::string_view key, std::int64_t value) {
    const std::size_t kv = w.open(field);
    w.string_field(1, key);
    const std::size_t any = w.open(2);
    w.varint_field(any_int, static_cast<std::uint64_t>(value));
    w.close(any);
    w.close(kv);
}

void put_double_attr(wire& w, int field, std::string_view key, double value) {
    const std::size_t kv = w.open(field);
    w.string_field(1, key);
    const std::size_t any = w.open(2);
    w.double_field(any_double, value);
    w.close(any);
    w.close(kv);
}

// request_transforms / response_transforms: an array of kvlists {name, action, duration_ms,
// error?, annotations?}, the JSON line's trace objects.
void put_traces(wire& w, std::string_view key, const std::vector<audit::trace>& traces) {
    const std::size_t kv = w.open(6);
    w.string_field(1, key);
    const std::size_t any = w.open(2);
    const std::size_t arr = w.open(any_array);
    for (const auto& t : traces) {
        const std::size_t item = w.open(1);
        const std::size_t list = w.open(any_kvlist);
        put_string_attr(w, 1, "name", t.name);
        put_string_attr(w, 1, "action", audit::to_string(t.action));
        put_double_attr(w, 1, "duration_ms", t.duration_ms);
        if (!t.error.empty()) put_string_attr(w, 1, "error", t.error);
        if (!t.annotations.empty()) put_key_value(w, 1, "annotations", t.annotations);
        w.close(list);
        w.close(item);
    }
    w.close(arr);
    w.close(any);
    w.close(kv);
}

std::uint64_t unix_nanos(std::chrono::system_clock::time_point t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

void put_attributes(wire& w, const audit::record& r) {
    put_string_attr(w, 6, "host", r.host);
    put_string_attr(w, 6, "method", r.method);
    put_string_attr(w, 6, "path", r.path);
    put_string_attr(w, 6, "remote_addr", r.remote_addr);
    put_string_attr(w, 6, "sni", r.sni);
    put_string_attr(w, 6, "mode", r.mode);
    put_string_attr(w, 6, "action", r.action);
    put_int_attr(w, 6, "status_code", r.status_code);
    put_double_attr(w, 6, "duration_ms", r.duration_ms);
    if (!r.rejected_by.empty()) put_string_attr(w, 6, "rejected_by", r.rejected_by);
    if (!r.stubbed_by.empty()) put_string_attr(w, 6, "stubbed_by", r.stubbed_by);
    if (!r.error.empty()) put_string_attr(w, 6, "error", r.error);
    if (!r.request_transforms.empty()) put_traces(w, "request_transforms", r.request_transforms);
    if (!r.response_transforms.empty()) put_traces(w, "response_transforms", r.response_transforms);
    if (r.mcp) put_key_value(w, 6, "mcp", *r.mcp);
    if (r.body_capture) put_key_value(w, 6, "body_capture", *r.body_capture);
}

// Reads one varint at `p`; false past the end or on more than 10 bytes.
bool read_varint(std::string_view& in, std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70 && !in.empty(); shift += 7) {
        const auto b = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

// Finds field `want` (varint or length-delimited) in a message; skips the others.
bool find_field(std::string_view msg, int want, std::uint64_t& varint_out, std::string_view& bytes_out) {
    while (!msg.empty()) {
        std::uint64_t key = 0;
        if (!read_varint(msg, key)) return false;
        const int field = static_cast<int>(key >> 3);
        const auto type = key & 7;
        std::uint64_t v = 0;
        if (type == 0) {
            if (!read_varint(msg, v)) return false;
            if (field == want) return varint_out = v, true;
        } else if (type == 2) {
            if (!read_varint(msg, v) || v > msg.size()) return false;
            if (field == want) return bytes_out = msg.substr(0, v), true;
            msg.remove_prefix(v);
        } else if (type == 1 || type == 5) {
            const std::size_t n = type == 1 ? 8 : 4;
            if (msg.size() < n) return false;
            msg.remove_prefix(n);
        } else {
            return false;
        }
    }
    return false;
}

}  // namespace

int severity_number_for(const char* level) {
    const std::string_view l(level);
    if (l == "ERROR") return 17;
    if (l == "WARN") return 13;
    return 9;
}

std::string encode_log_record(const audit::record& r, std::chrono::system_clock::time_point observed) {
    std::string out;
    out.reserve(512);
    wire w(out);
    w.fixed64_field(1, unix_nanos(r.time));
    const char* level = audit::level_for(r);
    w.varint_field(2, static_cast<std::uint64_t>(severity_number_for(level)));
    w.string_field(3, level);
    const std::size_t body = w.open(5);
    w.string_field(any_string, "request");
    w.close(body);
    put_attributes(w, r);
    w.fixed64_field(11, unix_nanos(observed));
    return out;
}

request_builder::request_builder(const key_values& resource) {
    wire res(resource_field_);
    const std::size_t r = res.open(1);
    for (const auto& [k, v] : resource) put_string_attr(res, 1, k, v);
    res.close(r);
    wire scope(scope_field_);
    const std::size_t s = scope.open(1);
    scope.string_field(1, scope_name);
    scope.string_field(2, IRON_VERSION);
    scope.close(s);
}

std::string request_builder::build(const std::vector<std::string>& log_records) const {
    std::size_t size = resource_field_.size() + scope_field_.size() + 32;
    for (const auto& rec : log_records) size += rec.size() + 6;
    std::string out;
    out.reserve(size);
    wire w(out);
    const std::size_t resource_logs = w.open(1);
    out.append(resource_field_);
    const std::size_t scope_logs = w.open(2);
    out.append(scope_field_);
    for (const auto& rec : log_records) {
        w.tag(2, len_type);
        w.varint(rec.size());
        out.append(rec);
    }
    w.close(scope_logs);
    w.close(resource_logs);
    return out;
}

long long rejected_in_response(const std::string& response) {
    std::uint64_t unused = 0, rejected = 0;
    std::string_view partial;
    if (!find_field(response, 1, unused, partial)) return 0;
    std::string_view ignored;
    if (!find_field(partial, 1, rejected, ignored)) return 0;
    return static_cast<long long>(rejected);
}

}  // namespace iron::otel
