#include "egress/state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "pipeline/rules.hpp"

namespace iron::egress {

namespace json = boost::json;

std::string_view mode_name(mode m) { return m == mode::warn ? "warn" : "enforce"; }

std::optional<mode> parse_mode(std::string_view text) {
    if (text == "warn") return mode::warn;
    if (text == "enforce") return mode::enforce;
    return std::nullopt;
}

std::string_view kind_name(rule_kind k) { return k == rule_kind::host ? "host" : "cidr"; }

result<void> check_rule_value(rule_kind kind, std::string_view value) {
    if (value.empty()) return make_error(std::string(kind_name(kind)) + " must not be empty");
    auto compiled = kind == rule_kind::host ? pipeline::host_only_rule(value) : pipeline::cidr_only_rule(value);
    if (!compiled) return compiled.err();
    return ok();
}

namespace {

// "rt-<n>" → n (n ≥ 1); 0 when the id has another shape.
std::uint64_t id_number(std::string_view id) {
    if (id.substr(0, 3) != "rt-" || id.size() == 3 || id.size() > 3 + 18) return 0;
    std::uint64_t n = 0;
    for (char c : id.substr(3)) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

result<runtime_rule> parse_rule(const json::value& v, std::size_t index) {
    const std::string where = "rules[" + std::to_string(index) + "]";
    const json::object* o = v.if_object();
    if (!o) return make_error(where + ": expected an object");
    runtime_rule rule;
    int values = 0;
    for (const auto& [key, field] : *o) {
        const json::string* s = field.if_string();
        if (!s) return make_error(where + "." + std::string(key) + ": expected a string");
        if (key == "id") {
            rule.id = std::string(*s);
        } else if (key == "host" || key == "cidr") {
            rule.kind = key == "host" ? rule_kind::host : rule_kind::cidr;
            rule.value = std::string(*s);
            ++values;
        } else {
            return make_error(where + ": unknown key \"" + std::string(key) + "\"");
        }
    }
    if (values != 1) return make_error(where + ": needs exactly one of \"host\" and \"cidr\"");
    if (id_number(rule.id) == 0) return make_error(where + ": id must look like \"rt-1\", got \"" + rule.id + "\"");
    if (auto r = check_rule_value(rule.kind, rule.value); !r) return make_error(where + ": " + r.message());
    return rule;
}

result<void> parse_rules(const json::value& v, runtime_state& out) {
    const json::array* list = v.if_array();
    if (!list) return make_error("rules: expected a list");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < list->size(); ++i) {
        auto rule = parse_rule((*list)[i], i);
        if (!rule) return rule.err();
        if (!seen.insert(rule->id).second) return make_error("rules[" + std::to_string(i) + "]: duplicate id " + rule->id);
        out.next_id = std::max(out.next_id, id_number(rule->id) + 1);  // an id is never handed out twice
        out.rules.push_back(std::move(*rule));
    }
    return ok();
}

result<void> parse_field(std::string_view key, const json::value& v, runtime_state& out, bool& versioned) {
    if (key == "version") {
        if (!v.is_int64() || v.as_int64() != 1) return make_error("version: expected 1");
        versioned = true;
    } else if (key == "mode") {
        const json::string* s = v.if_string();
        auto m = s ? parse_mode(*s) : std::nullopt;
        if (!m) return make_error("mode: expected \"warn\" or \"enforce\"");
        out.mode_override = *m;
    } else if (key == "next_id") {
        if (!v.is_int64() || v.as_int64() < 1) return make_error("next_id: expected a positive integer");
        out.next_id = std::max(out.next_id, static_cast<std::uint64_t>(v.as_int64()));
    } else if (key == "rules") {
        return parse_rules(v, out);
    } else {
        return make_error("unknown key \"" + std::string(key) + "\"");
    }
    return ok();
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

result<runtime_state> parse_state(std::string_view text) {
    boost::system::error_code ec;
    json::value doc = json::parse(text, ec);
    if (ec) return make_error("not valid JSON: " + ec.message());
    const json::object* o = doc.if_object();
    if (!o) return make_error("expected a JSON object");
    runtime_state out;
    bool versioned = false;
    for (const auto& [key, v] : *o)
        if (auto r = parse_field(key, v, out, versioned); !r) return r.err();
    if (!versioned) return make_error("version: missing");
    return out;
}

std::string render_state(const runtime_state& state) {
    json::object o;
    o["version"] = 1;
    if (state.mode_override) o["mode"] = mode_name(*state.mode_override);
    o["next_id"] = state.next_id;
    json::array rules;
    for (const auto& r : state.rules) rules.push_back(json::object{{"id", r.id}, {kind_name(r.kind), r.value}});
    o["rules"] = std::move(rules);
    return json::serialize(o) + "\n";
}

result<runtime_state> load_state(const std::string& path) {
    if (path.empty()) return runtime_state{};
    const std::string label = "management.state_path " + path;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int e = errno;
        std::error_code exists_ec;
        if (!std::filesystem::exists(path, exists_ec) && !exists_ec) {
            // First start: nothing saved yet. The directory must exist, or every change would fail.
            const auto dir = std::filesystem::path(path).parent_path();
            if (!dir.empty() && !std::filesystem::is_directory(dir, exists_ec))
                return make_error(label + ": directory " + dir.string() + " does not exist");
            return runtime_state{};
        }
        return make_error(label + ": cannot read: " + errno_text(e));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return make_error(label + ": cannot read");
    auto parsed = parse_state(text.str());
    if (!parsed) return make_error(label + ": " + parsed.message() + " (fix or remove the file)");
    return parsed;
}

namespace {

result<void> write_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return make_error(errno_text(errno));
        done += static_cast<std::size_t>(n);
    }
    return ok();
}

// The rename is durable only once the directory entry is on disk too.
void sync_directory(const std::string& path) {
    auto dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

result<void> save_state(const std::string& path, const runtime_state& state) {
    const std::string tmp = path + ".tmp";
    const std::string label = "writing management.state_path " + path;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return make_error(label + ": " + errno_text(errno));
    // An older temporary file keeps its mode through O_TRUNC: make it 0600 whatever it was.
    result<void> written = ::fchmod(fd, 0600) == 0 ? write_all(fd, render_state(state)) : make_error(errno_text(errno));
    if (written && ::fsync(fd) != 0) written = make_error(errno_text(errno));
    ::close(fd);
    if (written && ::rename(tmp.c_str(), path.c_str()) != 0) written = make_error(errno_text(errno));
    if (!written) {
        ::unlink(tmp.c_str());
        return make_error(label + ": " + written.message());
    }
    sync_directory(path);
    return ok();
}

}  // namespace iron::egress
