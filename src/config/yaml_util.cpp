// Strict YAML decoding helpers and Go-compatible duration parsing/formatting.
// Messages follow "<file>:<line>:<col>: <key.path>: <what>" so a typo anywhere in a config points
// at the exact spot; yaml-cpp marks are 0-based, we print 1-based like editors do.
#include "config/yaml_util.hpp"

#include <limits>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "config/config.hpp"

namespace iron::config {

namespace {

// Node::Mark() throws on invalid (missing-key) nodes; those simply have no position.
YAML::Mark mark_of(const YAML::Node& node) {
    try {
        if (!node.IsDefined()) return YAML::Mark::null_mark();
        return node.Mark();
    } catch (const YAML::Exception&) {
        return YAML::Mark::null_mark();
    }
}

std::string kind_name(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Null: return "null";
        case YAML::NodeType::Scalar: return go_quote(node.Scalar());
        default: return "nothing";
    }
}

// yaml-cpp tags plain scalars "?" and quoted ones "!"; an explicit !!int / !!bool tag is also fine.
bool is_plain_or_tagged(const YAML::Node& node, std::string_view yaml_tag) {
    const std::string& tag = node.Tag();
    return tag == "?" || tag.empty() || tag == std::string("tag:yaml.org,2002:") + std::string(yaml_tag);
}

// Go's strconv.ParseInt(s, 0, 64) after removing '_' (what yaml.v3 does for plain ints), minus the
// legacy leading-zero octal form, which we reject as ambiguous.
bool parse_yaml_int(std::string_view text, std::int64_t& out) {
    std::string s;
    for (char c : text) {
        if (c != '_') s.push_back(c);
    }
    bool neg = false;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        ++i;
    }
    int base = 10;
    if (s.size() - i > 2 && s[i] == '0') {
        char p = static_cast<char>(s[i + 1] | 0x20);
        if (p == 'x') base = 16;
        else if (p == 'o') base = 8;
        else if (p == 'b') base = 2;
        if (base != 10) i += 2;
    }
    if (i >= s.size()) return false;
    if (base == 10 && s[i] == '0' && s.size() - i > 1) return false;  // "0100": octal in Go
    unsigned long long limit = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
    unsigned long long v = 0;
    for (; i < s.size(); ++i) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return false;
        if (d >= base) return false;
        if (v > (limit - static_cast<unsigned long long>(d)) / static_cast<unsigned long long>(base)) return false;
        v = v * static_cast<unsigned long long>(base) + static_cast<unsigned long long>(d);
    }
    out = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
    return true;
}

// Walks every mapping; aliases can make the graph cyclic (`&a [*a]`), so containers are visited
// once (identified by their start offset) and depth is bounded.
result<void> walk_for_duplicates(const YAML::Node& node, const yaml_ctx& ctx, int depth,
                                 std::unordered_set<int>& seen) {
    if (!node.IsMap() && !node.IsSequence()) return ok();
    if (depth > 256) return ctx.fail(node, "YAML nesting is too deep");
    int pos = mark_of(node).pos;
    if (pos >= 0 && !seen.insert(pos).second) return ok();
    if (node.IsSequence()) {
        std::size_t i = 0;
        for (const auto& item : node) {
            auto r = walk_for_duplicates(item, ctx.index(i++), depth + 1, seen);
            if (!r) return r;
        }
        return ok();
    }
    std::unordered_map<std::string, int> first_line;
    for (const auto& kv : node) {
        const YAML::Node& key = kv.first;
        if (key.IsScalar()) {
            auto [it, inserted] = first_line.emplace(key.Scalar(), mark_of(key).line + 1);
            if (!inserted) {
                return ctx.fail(key, "duplicate key " + go_quote(key.Scalar()) + " (first at line " +
                                         std::to_string(it->second) + ")");
            }
            auto r = walk_for_duplicates(kv.second, ctx.child(key.Scalar()), depth + 1, seen);
            if (!r) return r;
        } else {
            auto r = walk_for_duplicates(kv.second, ctx, depth + 1, seen);
            if (!r) return r;
        }
    }
    return ok();
}

// --- Go time.ParseDuration -------------------------------------------------------------------

constexpr unsigned long long k_max_neg = 1ULL << 63;  // magnitude of the most negative duration

std::string bad_duration(std::string_view orig) { return "time: invalid duration " + go_quote(orig); }

unsigned long long unit_ns(std::string_view u) {
    if (u == "ns") return 1;
    if (u == "us" || u == "\xC2\xB5s" || u == "\xCE\xBCs") return 1000;  // µ (U+00B5) and μ (U+03BC)
    if (u == "ms") return 1000000;
    if (u == "s") return 1000000000ULL;
    if (u == "m") return 60ULL * 1000000000ULL;
    if (u == "h") return 3600ULL * 1000000000ULL;
    return 0;
}

// Writes v's fractional part (prec digits, trailing zeros dropped) in front of `out`; returns v/10^prec.
unsigned long long prepend_frac(std::string& out, unsigned long long v, int prec) {
    bool print = false;
    for (int i = 0; i < prec; ++i) {
        int digit = static_cast<int>(v % 10);
        print = print || digit != 0;
        if (print) out.insert(out.begin(), static_cast<char>('0' + digit));
        v /= 10;
    }
    if (print) out.insert(out.begin(), '.');
    return v;
}

void prepend_int(std::string& out, unsigned long long v) { out.insert(0, std::to_string(v)); }

}  // namespace

yaml_ctx yaml_ctx::child(std::string_view key) const {
    yaml_ctx c{file, path};
    if (!c.path.empty()) c.path += ".";
    c.path += key;
    return c;
}

yaml_ctx yaml_ctx::index(std::size_t i) const {
    return yaml_ctx{file, path + "[" + std::to_string(i) + "]"};
}

std::string yaml_ctx::where(const YAML::Node& at) const {
    YAML::Mark m = mark_of(at);
    if (m.is_null()) return file;
    return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

error yaml_ctx::fail(const YAML::Node& at, std::string_view what) const {
    std::string out = where(at) + ": ";
    if (!path.empty()) out += path + ": ";
    out += what;
    return make_error(std::move(out));
}

bool is_absent(const YAML::Node& node) { return !node.IsDefined() || node.IsNull(); }

result<void> expect_map(const YAML::Node& node, const yaml_ctx& ctx,
                        std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) return ctx.fail(node, "expected a map, got " + kind_name(node));
    std::unordered_map<std::string, int> first_line;
    for (const auto& kv : node) {
        const YAML::Node& key = kv.first;
        if (!key.IsScalar()) return ctx.fail(key, "expected a string key, got " + kind_name(key));
        const std::string& name = key.Scalar();
        bool known = false;
        for (auto a : allowed) known = known || a == name;
        if (!known) {
            std::string list;
            for (auto a : allowed) {
                if (!list.empty()) list += ", ";
                list += a;
            }
            return ctx.fail(key, "unknown key " + go_quote(name) + " (allowed: " + list + ")");
        }
        auto [it, inserted] = first_line.emplace(name, mark_of(key).line + 1);
        if (!inserted) {
            return ctx.fail(key, "duplicate key " + go_quote(name) + " (first at line " +
                                     std::to_string(it->second) + ")");
        }
    }
    return ok();
}

result<void> reject_duplicate_keys(const YAML::Node& root, const std::string& file) {
    std::unordered_set<int> seen;
    return walk_for_duplicates(root, yaml_ctx{file, ""}, 0, seen);
}

result<std::string> get_string(const YAML::Node& node, const yaml_ctx& ctx) {
    if (is_absent(node)) return std::string();
    if (!node.IsScalar()) return ctx.fail(node, "expected a string, got " + kind_name(node));
    return node.Scalar();
}

result<bool> get_bool(const YAML::Node& node, const yaml_ctx& ctx) {
    if (node.IsDefined() && node.IsScalar() && is_plain_or_tagged(node, "bool")) {
        const std::string& s = node.Scalar();
        for (const char* t : {"true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"}) {
            if (s == t) return true;
        }
        for (const char* f : {"false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"}) {
            if (s == f) return false;
        }
    }
    return ctx.fail(node, "expected a boolean (true or false), got " + kind_name(node));
}

result<std::int64_t> get_int(const YAML::Node& node, const yaml_ctx& ctx) {
    if (node.IsDefined() && node.IsScalar() && is_plain_or_tagged(node, "int")) {
        std::int64_t v = 0;
        if (parse_yaml_int(node.Scalar(), v)) return v;
    }
    return ctx.fail(node, "expected an integer, got " + kind_name(node));
}

result<std::vector<std::string>> get_string_list(const YAML::Node& node, const yaml_ctx& ctx) {
    std::vector<std::string> out;
    if (is_absent(node)) return out;
    if (!node.IsSequence()) return ctx.fail(node, "expected a list, got " + kind_name(node));
    std::size_t i = 0;
    for (const auto& item : node) {
        auto s = get_string(item, ctx.index(i++));
        if (!s) return s.err();
        out.push_back(std::move(*s));
    }
    return out;
}

result<std::chrono::nanoseconds> get_duration(const YAML::Node& node, const yaml_ctx& ctx) {
    using std::chrono::nanoseconds;
    if (is_absent(node)) return nanoseconds(0);
    const char* want = "expected a duration string like \"30s\", got ";
    if (!node.IsScalar()) return ctx.fail(node, want + kind_name(node));
    const std::string& s = node.Scalar();
    // yaml.v3 refuses plain numbers for time.Duration fields ("30" would otherwise mean 30ns).
    if (node.Tag() != "!") {
        bool numeric = false, other = false;
        for (char c : s) {
            if (c >= '0' && c <= '9') numeric = true;
            else if (std::string_view("+-._eE").find(c) == std::string_view::npos) other = true;
        }
        if (numeric && !other) return ctx.fail(node, want + s);
    }
    if (s.empty()) return nanoseconds(0);
    auto d = parse_go_duration(s);
    if (!d) return ctx.fail(node, d.message());
    return *d;
}

result<duration> parse_go_duration(std::string_view text) {
    std::string_view orig = text, s = text;
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s == "0") return duration(0);
    if (s.empty()) return make_error(bad_duration(orig));
    unsigned long long total = 0;
    while (!s.empty()) {
        if (!(s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) return make_error(bad_duration(orig));
        // Integer part: overflow past 2^63 is an error.
        unsigned long long v = 0;
        std::size_t i = 0;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
            if (v > k_max_neg / 10) return make_error(bad_duration(orig));
            v = v * 10 + static_cast<unsigned long long>(s[i] - '0');
            if (v > k_max_neg) return make_error(bad_duration(orig));
        }
        bool pre = i > 0;
        s.remove_prefix(i);
        // Fraction: digits beyond int64 precision are consumed but ignored, as in Go.
        unsigned long long f = 0;
        double scale = 1;
        bool post = false;
        if (!s.empty() && s[0] == '.') {
            s.remove_prefix(1);
            bool overflow = false;
            std::size_t j = 0;
            for (; j < s.size() && s[j] >= '0' && s[j] <= '9'; ++j) {
                if (overflow) continue;
                if (f > (k_max_neg - 1) / 10) {
                    overflow = true;
                    continue;
                }
                unsigned long long y = f * 10 + static_cast<unsigned long long>(s[j] - '0');
                if (y > k_max_neg) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = j > 0;
            s.remove_prefix(j);
        }
        if (!pre && !post) return make_error(bad_duration(orig));
        std::size_t u = 0;
        while (u < s.size() && s[u] != '.' && !(s[u] >= '0' && s[u] <= '9')) ++u;
        if (u == 0) return make_error("time: missing unit in duration " + go_quote(orig));
        std::string_view unit_text = s.substr(0, u);
        s.remove_prefix(u);
        unsigned long long unit = unit_ns(unit_text);
        if (unit == 0) {
            return make_error("time: unknown unit " + go_quote(unit_text) + " in duration " + go_quote(orig));
        }
        if (v > k_max_neg / unit) return make_error(bad_duration(orig));
        v *= unit;
        if (f > 0) {
            v += static_cast<unsigned long long>(static_cast<double>(f) * (static_cast<double>(unit) / scale));
            if (v > k_max_neg) return make_error(bad_duration(orig));
        }
        total += v;
        if (total > k_max_neg) return make_error(bad_duration(orig));
    }
    if (neg) return duration(static_cast<std::int64_t>(0 - total));
    if (total > k_max_neg - 1) return make_error(bad_duration(orig));
    return duration(static_cast<std::int64_t>(total));
}

std::string format_go_duration(std::chrono::nanoseconds d) {
    std::int64_t n = d.count();
    bool neg = n < 0;
    unsigned long long u = neg ? 0 - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
    std::string out;
    if (u < 1000000000ULL) {
        if (u == 0) return "0s";
        int prec;
        if (u < 1000ULL) {
            prec = 0;
            out = "ns";
        } else if (u < 1000000ULL) {
            prec = 3;
            out = "\xC2\xB5s";  // Go prints the micro sign
        } else {
            prec = 6;
            out = "ms";
        }
        u = prepend_frac(out, u, prec);
        prepend_int(out, u);
    } else {
        out = "s";
        u = prepend_frac(out, u, 9);
        prepend_int(out, u % 60);
        u /= 60;
        if (u > 0) {
            out.insert(out.begin(), 'm');
            prepend_int(out, u % 60);
            u /= 60;
            if (u > 0) {
                out.insert(out.begin(), 'h');
                prepend_int(out, u);
            }
        }
    }
    if (neg) out.insert(out.begin(), '-');
    return out;
}

std::string go_quote(std::string_view text) {
    static const char* hex = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\a': out += "\\a"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\v': out += "\\v"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\x";
                    out += hex[c >> 4];
                    out += hex[c & 0xf];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += "\"";
    return out;
}

result<bool> go_parse_bool(std::string_view s) {
    for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) {
        if (s == t) return true;
    }
    for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
        if (s == f) return false;
    }
    return make_error("strconv.ParseBool: parsing " + go_quote(s) + ": invalid syntax");
}

result<std::int64_t> go_parse_int(std::string_view s, std::string_view fn, std::int64_t lo, std::int64_t hi) {
    std::string prefix = "strconv." + std::string(fn) + ": parsing " + go_quote(s) + ": ";
    std::size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    if (i >= s.size()) return make_error(prefix + "invalid syntax");
    bool neg = s[0] == '-';
    unsigned long long v = 0;
    bool overflow = false;
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return make_error(prefix + "invalid syntax");
        if (v > (std::numeric_limits<unsigned long long>::max() - 9) / 10) overflow = true;
        if (!overflow) v = v * 10 + static_cast<unsigned long long>(s[i] - '0');
    }
    unsigned long long limit = neg ? 0 - static_cast<unsigned long long>(lo) : static_cast<unsigned long long>(hi);
    if (overflow || v > limit) return make_error(prefix + "value out of range");
    return neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
}

result<void> read_optional_string(const YAML::Node& m, std::string_view key, const yaml_ctx& ctx, std::string& out) {
    const YAML::Node n = m[std::string(key)];
    if (is_absent(n)) return ok();
    auto v = get_string(n, ctx.child(key));
    if (!v) return v.err();
    out = std::move(*v);
    return ok();
}

result<void> read_optional_bool(const YAML::Node& m, std::string_view key, const yaml_ctx& ctx, bool& out) {
    const YAML::Node n = m[std::string(key)];
    if (is_absent(n)) return ok();
    auto v = get_bool(n, ctx.child(key));
    if (!v) return v.err();
    out = *v;
    return ok();
}

}  // namespace iron::config
