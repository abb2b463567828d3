#include "transforms/hmac_sign/go_template.hpp"

#include <algorithm>
#include <optional>

#include "config/yaml_util.hpp"
#include "transforms/secrets_scan.hpp"

namespace iron::transforms::hmac_sign {

// An operand of a command: a field chain (.A.b), the dot itself, a string literal, or a function.
struct operand {
    enum class kind { field, dot, literal, function } what = kind::literal;
    std::vector<std::string> chain;  // field: the names after each '.'
    std::string text;                // literal: its value; function: its name
};

// One command of a pipeline: a function and its arguments, or a single operand.
struct command {
    std::vector<operand> args;
};

struct go_template::node {
    bool is_text = true;
    std::string text;               // literal text, or the action as written (for errors)
    std::vector<command> pipeline;  // action: the commands, piped left to right
};

namespace {

constexpr std::string_view functions[] = {"print", "printf", "index", "len", "urlquery"};
constexpr std::string_view refused[] = {"if", "else", "end", "range", "with", "define", "template", "block",
                                        "break", "continue", "and", "or", "not", "eq", "ne", "lt", "le",
                                        "gt", "ge", "call", "html", "js", "slice", "println"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// A Go string literal: "…" with the usual escapes, or `raw`.
result<std::string> unquote(std::string_view tok) {
    if (tok.front() == '`') return std::string(tok.substr(1, tok.size() - 2));
    std::string out;
    for (std::size_t i = 1; i + 1 < tok.size(); ++i) {
        if (tok[i] != '\\') {
            out.push_back(tok[i]);
            continue;
        }
        switch (tok[++i]) {
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'r': out.push_back('\r'); break;
            case '\\': out.push_back('\\'); break;
            case '"': out.push_back('"'); break;
            default: return make_error("unsupported escape in string " + std::string(tok));
        }
    }
    return out;
}

// Splits an action into tokens: string literals, '|', and words (fields, names).
result<std::vector<std::string>> tokenize(std::string_view body) {
    std::vector<std::string> toks;
    std::size_t i = 0;
    while (i < body.size()) {
        if (is_space(body[i])) {
            ++i;
            continue;
        }
        const std::size_t start = i;
        if (body[i] == '"' || body[i] == '`') {
            const char q = body[i++];
            while (i < body.size() && body[i] != q) i += (q == '"' && body[i] == '\\') ? 2 : 1;
            if (i >= body.size()) return make_error("unterminated quoted string");
            ++i;
        } else if (body[i] == '|') {
            ++i;
        } else {
            while (i < body.size() && !is_space(body[i]) && body[i] != '|') ++i;
        }
        toks.emplace_back(body.substr(start, i - start));
    }
    return toks;
}

result<operand> parse_operand(const std::string& tok, const go_template::extensions& ext) {
    operand op;
    if (tok.front() == '"' || tok.front() == '`') {
        auto s = unquote(tok);
        if (!s) return s.err();
        op.text = std::move(*s);
        return op;
    }
    if (tok == ".") {
        op.what = operand::kind::dot;
        return op;
    }
    if (tok.front() == '.') {
        op.what = operand::kind::field;
        std::size_t i = 0;
        while (i < tok.size()) {
            if (tok[i] != '.') return make_error("bad field " + tok);
            std::size_t j = i + 1;
            while (j < tok.size() && is_ident(tok[j])) ++j;
            if (j == i + 1) return make_error("bad field " + tok);
            op.chain.emplace_back(tok.substr(i + 1, j - i - 1));
            i = j;
        }
        return op;
    }
    if (std::find(std::begin(functions), std::end(functions), tok) != std::end(functions) ||
        (ext.base64 && tok == "base64")) {
        op.what = operand::kind::function;
        op.text = tok;
        return op;
    }
    if (std::find(std::begin(refused), std::end(refused), tok) != std::end(refused))
        return make_error(config::go_quote(tok) + " is not supported in signing templates");
    if (tok == "(" || tok.front() == '(' || tok.front() == '$') return make_error(tok + " is not supported in signing templates");
    return make_error("function " + config::go_quote(tok) + " not defined");
}

// printf's verbs on string arguments.
result<void> check_format(std::string_view fmt) {
    for (std::size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') continue;
        if (++i >= fmt.size()) return make_error("printf: format ends with %");
        if (std::string_view("svqxX%").find(fmt[i]) == std::string_view::npos)
            return make_error(std::string("printf: verb %") + fmt[i] + " is not supported (use %s %v %q %x %X %%)");
    }
    return {};
}

result<std::vector<command>> parse_pipeline(std::string_view body, const go_template::extensions& ext) {
    auto toks = tokenize(body);
    if (!toks) return toks.err();
    std::vector<command> cmds(1);
    for (const auto& t : *toks) {
        if (t == "|") {
            if (cmds.back().args.empty()) return make_error("missing command before |");
            cmds.emplace_back();
            continue;
        }
        auto op = parse_operand(t, ext);
        if (!op) return op.err();
        cmds.back().args.push_back(std::move(*op));
    }
    if (cmds.back().args.empty()) return make_error(cmds.size() == 1 ? "missing value for command" : "missing command after |");
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        const auto& args = cmds[i].args;
        const bool is_func = args[0].what == operand::kind::function;
        if (!is_func && (args.size() > 1 || i > 0)) return make_error("can't give argument to non-function");
        if (is_func && args[0].text == "printf") {
            if (args.size() < 2 || args[1].what != operand::kind::literal) return make_error("printf needs a literal format string");
            if (auto ok = check_format(args[1].text); !ok) return ok.err();
        }
        for (std::size_t a = 1; a < args.size(); ++a)
            if (args[a].what == operand::kind::function) return make_error("a function can't be an argument here");
    }
    return cmds;
}

// --- evaluation ------------------------------------------------------------------------------

struct value {
    enum class kind { string, map, root } what = kind::string;
    std::string s;
};

std::string describe(const std::vector<std::string>& chain, std::size_t upto) {
    std::string out;
    for (std::size_t i = 0; i <= upto && i < chain.size(); ++i) out += "." + chain[i];
    return out;
}

result<value> eval_field(const operand& op, const template_data& d) {
    value cur{value::kind::root, {}};
    for (std::size_t i = 0; i < op.chain.size(); ++i) {
        const std::string& name = op.chain[i];
        const std::string at = "at <" + describe(op.chain, i) + ">: ";
        if (cur.what == value::kind::string) return make_error(at + "can't evaluate field " + name + " in type string");
        if (cur.what == value::kind::map) {
            auto it = std::find_if(d.credentials->begin(), d.credentials->end(), [&](const auto& kv) { return kv.first == name; });
            if (it == d.credentials->end()) return make_error(at + "map has no entry for key " + config::go_quote(name));
            cur = value{value::kind::string, it->second};
            continue;
        }
        if (name == "Credentials" && d.credentials != nullptr) {
            cur = value{value::kind::map, {}};
            continue;
        }
        auto it = std::find_if(d.fields.begin(), d.fields.end(), [&](const auto& kv) { return kv.first == name; });
        if (it == d.fields.end()) return make_error(at + "can't evaluate field " + name);
        cur = value{value::kind::string, std::string(it->second)};
    }
    return cur;
}

std::string go_quote_string(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\x";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

std::string hex_of(std::string_view s, bool upper) {
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string query_escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (is_ident(static_cast<char>(c)) || c == '-' || c == '.' || c == '~') out += static_cast<char>(c);
        else if (c == ' ') out += '+';
        else out += "%" + hex_of(std::string_view(reinterpret_cast<const char*>(&c), 1), true);
    }
    return out;
}

std::string printf_string(std::string_view fmt, const std::vector<value>& args) {
    std::string out;
    std::size_t next = 0;
    for (std::size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out += fmt[i];
            continue;
        }
        const char verb = fmt[++i];
        if (verb == '%') {
            out += '%';
            continue;
        }
        if (next >= args.size()) {
            out += std::string("%!") + verb + "(MISSING)";
            continue;
        }
        const std::string& a = args[next++].s;
        if (verb == 'q') out += go_quote_string(a);
        else if (verb == 'x' || verb == 'X') out += hex_of(a, verb == 'X');
        else out += a;
    }
    return out;
}

result<value> call(const std::string& fn, std::vector<value> args) {
    for (const auto& a : args)
        if (a.what != value::kind::string && !(fn == "index" || fn == "len"))
            return make_error(fn + ": can't use a map as a string");
    value out;
    if (fn == "print") {
        for (const auto& a : args) out.s += a.s;
    } else if (fn == "printf") {
        std::vector<value> rest(args.begin() + 1, args.end());
        out.s = printf_string(args[0].s, rest);
    } else if (fn == "base64") {  // the MCP gateway's FuncMap: std encoding of the arguments joined
        std::string joined;
        for (const auto& a : args) joined += a.s;
        out.s = scan::base64_encode(joined);
    } else if (fn == "urlquery") {
        std::string joined;
        for (const auto& a : args) joined += a.s;
        out.s = query_escape(joined);
    } else if (fn == "len") {
        if (args.size() != 1) return make_error("wrong number of args for len: want 1 got " + std::to_string(args.size()));
        out.s = std::to_string(args[0].what == value::kind::map ? 0 : args[0].s.size());
    } else {  // index
        if (args.size() != 2 || args[0].what != value::kind::map || args[1].what != value::kind::string)
            return make_error("index: only index MAP \"key\" is supported");
        return value{value::kind::map, args[1].s};  // resolved by the caller, which has the map
    }
    return out;
}

result<value> eval_operand(const operand& op, const template_data& d) {
    switch (op.what) {
        case operand::kind::literal: return value{value::kind::string, op.text};
        case operand::kind::dot: return value{value::kind::root, {}};
        case operand::kind::field: return eval_field(op, d);
        case operand::kind::function: break;
    }
    return make_error("unexpected function");
}

result<value> eval_command(const command& cmd, const template_data& d, std::optional<value> piped) {
    if (cmd.args[0].what != operand::kind::function) return eval_operand(cmd.args[0], d);
    std::vector<value> args;
    for (std::size_t i = 1; i < cmd.args.size(); ++i) {
        auto v = eval_operand(cmd.args[i], d);
        if (!v) return v.err();
        args.push_back(std::move(*v));
    }
    if (piped) args.push_back(std::move(*piped));
    const std::string& fn = cmd.args[0].text;
    if (fn == "printf" && args.empty()) return make_error("printf: missing format");
    auto r = call(fn, std::move(args));
    if (!r || fn != "index") return r;
    // index MAP KEY: a missing key is the empty string, as Go's index on a map.
    for (const auto& [k, v] : *d.credentials)
        if (k == r->s) return value{value::kind::string, v};
    return value{value::kind::string, {}};
}

}  // namespace

result<go_template> go_template::parse(std::string name, std::string_view text, extensions ext) {
    go_template t;
    t.name_ = std::move(name);
    auto nodes = std::make_shared<std::vector<node>>();
    auto fail = [&](const std::string& what) { return make_error("template: " + t.name_ + ": " + what); };
    std::size_t pos = 0;
    bool trim_next = false;
    while (pos <= text.size()) {
        const std::size_t open = text.find("{{", pos);
        std::string literal(text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos));
        if (trim_next) literal.erase(0, std::min(literal.size(), literal.find_first_not_of(" \t\r\n")));
        if (open == std::string_view::npos) {
            if (!literal.empty()) nodes->push_back({true, std::move(literal), {}});
            break;
        }
        std::size_t body_start = open + 2;
        if (text.substr(body_start, 2) == "- " || text.substr(body_start, 2) == "-\t" || text.substr(body_start, 2) == "-\n") {
            literal.erase(literal.find_last_not_of(" \t\r\n") + 1);
            body_start += 2;
        }
        if (!literal.empty()) nodes->push_back({true, std::move(literal), {}});
        // The closing braces, outside string literals.
        std::size_t i = body_start;
        char quote = 0;
        for (; i + 1 < text.size(); ++i) {
            if (quote) {
                if (quote == '"' && text[i] == '\\') ++i;
                else if (text[i] == quote) quote = 0;
            } else if (text[i] == '"' || text[i] == '`') {
                quote = text[i];
            } else if (text[i] == '}' && text[i + 1] == '}') {
                break;
            }
        }
        if (i + 1 >= text.size()) return fail("unclosed action");
        std::string_view body = text.substr(body_start, i - body_start);
        trim_next = body.size() >= 2 && body.back() == '-' && is_space(body[body.size() - 2]);
        if (trim_next) body.remove_suffix(2);
        pos = i + 2;
        std::string_view trimmed = body;
        while (!trimmed.empty() && is_space(trimmed.front())) trimmed.remove_prefix(1);
        while (!trimmed.empty() && is_space(trimmed.back())) trimmed.remove_suffix(1);
        if (trimmed.starts_with("/*")) {
            if (!trimmed.ends_with("*/")) return fail("unclosed comment");
            continue;
        }
        auto cmds = parse_pipeline(body, ext);
        if (!cmds) return fail(cmds.message());
        nodes->push_back({false, "{{" + std::string(body) + "}}", std::move(*cmds)});
    }
    t.nodes_ = std::move(nodes);
    return t;
}

result<std::string> go_template::render(const template_data& data) const {
    std::string out;
    for (const auto& n : *nodes_) {
        if (n.is_text) {
            out += n.text;
            continue;
        }
        std::optional<value> v;
        for (const auto& cmd : n.pipeline) {
            auto r = eval_command(cmd, data, std::move(v));
            if (!r) return make_error("template: " + name_ + ": executing " + n.text + " " + r.message());
            v = std::move(*r);
        }
        if (v->what != value::kind::string)
            return make_error("template: " + name_ + ": executing " + n.text + ": printing a map or the whole data is refused");
        out += v->s;
    }
    return out;
}

std::vector<std::string> go_template::top_level_fields() const {
    std::vector<std::string> out;
    for (const auto& n : *nodes_)
        for (const auto& cmd : n.pipeline)
            for (const auto& op : cmd.args)
                if (op.what == operand::kind::field && std::find(out.begin(), out.end(), op.chain[0]) == out.end())
                    out.push_back(op.chain[0]);
    return out;
}

}  // namespace iron::transforms::hmac_sign
