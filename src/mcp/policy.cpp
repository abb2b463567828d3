#include "mcp/policy.hpp"

#include <charconv>
#include <limits>
#include <set>

#include "config/yaml_util.hpp"

namespace iron::mcp {
namespace {

using config::yaml_ctx;

bool is_plain(const YAML::Node& n) { return n.Tag() != "!"; }  // yaml-cpp tags quoted scalars "!"

// A plain YAML number (decimal integer or float; YAML's .inf spellings), else nullopt.
std::optional<double> plain_number(const std::string& s) {
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf") return std::numeric_limits<double>::infinity();
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -std::numeric_limits<double>::infinity();
    std::string_view t = s;
    if (!t.empty() && t[0] == '+') t.remove_prefix(1);
    // from_chars also reads "inf" and "nan", which YAML keeps as strings.
    if (t.empty() || t.find_first_not_of("0123456789+-.eE") != std::string_view::npos ||
        t.find_first_of("0123456789") == std::string_view::npos)
        return std::nullopt;
    double d = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
    return d;
}

// A YAML scalar as the JSON value a tool argument would carry: plain true/false are booleans and
// plain numbers are numbers (compared as doubles, as the Go proxy does); anything quoted, and
// any other text, is a string.
result<boost::json::value> scalar_value(const YAML::Node& n, const yaml_ctx& ctx) {
    if (!n.IsScalar()) return ctx.fail(n, "expected a scalar (string, number or boolean)");
    const std::string& s = n.Scalar();
    if (is_plain(n)) {
        if (s == "true" || s == "True" || s == "TRUE") return boost::json::value(true);
        if (s == "false" || s == "False" || s == "FALSE") return boost::json::value(false);
        if (auto d = plain_number(s)) return boost::json::value(*d);
    }
    return boost::json::value(boost::json::string(s));
}

std::vector<std::string> split_path(const std::string& p) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = p.find('.', start);
        out.push_back(p.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) return out;
        start = dot + 1;
    }
}

// True when a group that holds an unbounded quantifier is itself repeated ("(a+)+", "(x*y)*"):
// with a backtracking engine such a pattern can take exponential time on a crafted argument.
bool nested_repetition(std::string_view re) {
    std::vector<bool> open;  // per open group: does it contain * + or {
    bool in_class = false;
    for (std::size_t i = 0; i < re.size(); ++i) {
        const char c = re[i];
        if (c == '\\') {
            ++i;
            continue;
        }
        if (in_class) {
            in_class = c != ']';
            continue;
        }
        if (c == '[') in_class = true;
        else if (c == '(') open.push_back(false);
        else if ((c == '*' || c == '+' || c == '{') && !open.empty()) open.back() = true;
        else if (c == ')' && !open.empty()) {
            const bool inner = open.back();
            open.pop_back();
            const char next = i + 1 < re.size() ? re[i + 1] : '\0';
            if (inner && (next == '*' || next == '+' || next == '{')) return true;
            if (inner && !open.empty()) open.back() = true;
        }
    }
    return false;
}

result<clause> parse_clause(const YAML::Node& n, const yaml_ctx& ctx) {
    if (auto ok = config::expect_map(n, ctx, {"path", "equals", "in", "matches"}); !ok) return ok.err();
    auto path = config::get_string(n["path"], ctx.child("path"));
    if (!path) return path.err();
    if (path->empty()) return ctx.fail(n, "path is required");
    const bool has_eq = !config::is_absent(n["equals"]), has_in = !config::is_absent(n["in"]);
    const bool has_re = !config::is_absent(n["matches"]);
    if (int(has_eq) + int(has_in) + int(has_re) != 1) return ctx.fail(n, "exactly one of equals, in, matches is required");
    clause c;
    c.path = split_path(*path);
    if (has_eq) {
        auto v = scalar_value(n["equals"], ctx.child("equals"));
        if (!v) return v.err();
        c.values.push_back(std::move(*v));
    } else if (has_in) {
        const YAML::Node list = n["in"];
        if (!list.IsSequence()) return ctx.child("in").fail(list, "expected a list");
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto v = scalar_value(list[i], ctx.child("in").index(i));
            if (!v) return v.err();
            c.values.push_back(std::move(*v));
        }
    } else {
        c.what = clause::test::matches;
        auto re = config::get_string(n["matches"], ctx.child("matches"));
        if (!re) return re.err();
        c.pattern = *re;
        if (nested_repetition(c.pattern))
            return ctx.child("matches").fail(n["matches"], "repeated group with a repetition inside (e.g. (a+)+): "
                                                           "it can take exponential time; write it without nesting");
        try {
            c.re = std::regex(c.pattern, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            return ctx.child("matches").fail(n["matches"], std::string("invalid matches regex: ") + e.what());
        }
    }
    if (has_in) c.what = clause::test::in;
    return c;
}

result<tool> parse_tool(const YAML::Node& n, const yaml_ctx& ctx) {
    if (auto ok = config::expect_map(n, ctx, {"name", "when"}); !ok) return ok.err();
    tool t;
    auto name = config::get_string(n["name"], ctx.child("name"));
    if (!name) return name.err();
    if (name->empty()) return ctx.fail(n, "name is required");
    t.name = *name;
    const YAML::Node when = n["when"];
    if (config::is_absent(when)) return t;
    if (!when.IsSequence()) return ctx.child("when").fail(when, "expected a list");
    for (std::size_t i = 0; i < when.size(); ++i) {
        auto c = parse_clause(when[i], ctx.child("when").index(i));
        if (!c) return c.err();
        t.when.push_back(std::move(*c));
    }
    return t;
}

result<server> parse_server(const YAML::Node& n, const yaml_ctx& ctx) {
    if (auto ok = config::expect_map(n, ctx, {"name", "rules", "tools"}); !ok) return ok.err();
    server s;
    auto name = config::get_string(n["name"], ctx.child("name"));
    if (!name) return name.err();
    if (name->empty()) return ctx.fail(n, "name is required");
    s.name = *name;
    auto rules = pipeline::parse_rules(n["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(n, "at least one rule is required");
    s.rules = pipeline::rule_set(std::move(*rules));
    const YAML::Node tools = n["tools"];
    if (config::is_absent(tools)) return s;  // no tools: every call is refused
    if (!tools.IsSequence()) return ctx.child("tools").fail(tools, "expected a list");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < tools.size(); ++i) {
        auto t = parse_tool(tools[i], ctx.child("tools").index(i));
        if (!t) return t.err();
        if (!seen.insert(t->name).second)
            return ctx.child("tools").index(i).fail(tools[i], "duplicate tool name " + config::go_quote(t->name));
        s.tools.push_back(std::move(*t));
    }
    return s;
}

result<void> parse_error_block(const YAML::Node& n, const yaml_ctx& ctx, policy& p) {
    if (config::is_absent(n)) return ok();
    if (auto ok = config::expect_map(n, ctx, {"code", "message"}); !ok) return ok.err();
    if (!config::is_absent(n["code"])) {
        auto code = config::get_int(n["code"], ctx.child("code"));
        if (!code) return code.err();
        p.error_code = *code;
    }
    if (n["message"].IsDefined() && !n["message"].IsNull()) {
        auto msg = config::get_string(n["message"], ctx.child("message"));
        if (!msg) return msg.err();
        p.error_message = *msg;
    }
    return ok();
}

bool number_equals(const boost::json::value& a, const boost::json::value& b) {
    if (!a.is_number() || !b.is_number()) return false;
    return a.to_number<double>() == b.to_number<double>();
}

bool scalar_equals(const boost::json::value& got, const boost::json::value& want) {
    if (want.is_number()) return number_equals(got, want);
    if (want.is_bool()) return got.is_bool() && got.get_bool() == want.get_bool();
    return got.is_string() && want.is_string() && got.get_string() == want.get_string();
}

}  // namespace

const boost::json::value* resolve(const boost::json::value* root, const std::vector<std::string>& path) {
    const boost::json::value* cur = root;
    for (const auto& seg : path) {
        if (cur == nullptr) return nullptr;
        if (const auto* obj = cur->if_object()) {
            cur = obj->if_contains(seg);
        } else if (const auto* arr = cur->if_array()) {
            std::size_t i = 0;
            const char* end = seg.data() + seg.size();
            auto [p, ec] = std::from_chars(seg.data(), end, i);
            if (seg.empty() || ec != std::errc() || p != end || i >= arr->size()) return nullptr;
            cur = &(*arr)[i];
        } else {
            return nullptr;
        }
    }
    return cur;
}

bool clause::holds(const boost::json::value* arguments) const {
    const boost::json::value* v = resolve(arguments, path);
    if (v == nullptr) return false;
    switch (what) {
        case test::equals:
        case test::in:
            for (const auto& want : values)
                if (scalar_equals(*v, want)) return true;
            return false;
        case test::matches: {
            if (!v->is_string() || v->get_string().size() > max_matched_value_bytes) return false;
            const auto& s = v->get_string();
            return std::regex_search(s.begin(), s.end(), re);
        }
    }
    return false;
}

const tool* server::find(std::string_view name) const {
    for (const auto& t : tools)
        if (t.name == name) return &t;
    return nullptr;
}

std::string_view server::refuse(std::string_view tool_name, const boost::json::value* arguments) const {
    const tool* t = find(tool_name);
    if (t == nullptr) return reason::tool_not_allowed;
    for (const auto& c : t->when)
        if (!c.holds(arguments)) return reason::argument_constraint;
    return {};
}

const server* policy::match(const pipeline::exchange& ex) const {
    for (const auto& s : servers)
        if (s.rules.matches_any(ex)) return &s;
    return nullptr;
}

const server* policy::find(std::string_view name) const {
    for (const auto& s : servers)
        if (s.name == name) return &s;
    return nullptr;
}

result<std::optional<policy>> parse_policy(const YAML::Node& node, const std::string& file) {
    yaml_ctx ctx{file, "mcp"};
    if (config::is_absent(node)) return std::optional<policy>();
    if (auto ok = config::expect_map(node, ctx, {"error", "servers"}); !ok) return ok.err();
    policy p;
    if (auto ok = parse_error_block(node["error"], ctx.child("error"), p); !ok) return ok.err();
    const YAML::Node servers = node["servers"];
    if (config::is_absent(servers)) return std::optional<policy>();
    if (!servers.IsSequence()) return ctx.child("servers").fail(servers, "expected a list");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < servers.size(); ++i) {
        const yaml_ctx sc = ctx.child("servers").index(i);
        auto s = parse_server(servers[i], sc);
        if (!s) return s.err();
        if (!seen.insert(s->name).second) return sc.fail(servers[i], "duplicate server name " + config::go_quote(s->name));
        p.servers.push_back(std::move(*s));
    }
    if (p.servers.empty()) return std::optional<policy>();
    return std::optional<policy>(std::move(p));
}

}  // namespace iron::mcp
