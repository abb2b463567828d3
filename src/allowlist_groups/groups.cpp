#include "allowlist_groups/groups.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "allowlist_groups/embedded.hpp"
#include "core/cidr.hpp"
#include "core/host_glob.hpp"

namespace iron::allowlist_groups {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

// yaml-cpp drops comments, and the comment is the review note of an entry, so the list items'
// trailing comments are read from the text: `  - "value"   # what uses it`.
std::map<std::string, std::string> item_comments(std::string_view text) {
    std::map<std::string, std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        const std::string line = trim(text.substr(pos, eol - pos));
        pos = eol + 1;
        if (line.size() < 2 || line[0] != '-') continue;
        std::string rest = trim(std::string_view(line).substr(1));
        std::string value;
        std::size_t after = 0;
        if (!rest.empty() && rest[0] == '"') {
            const auto close = rest.find('"', 1);
            if (close == std::string::npos) continue;
            value = rest.substr(1, close - 1);
            after = close + 1;
        } else {
            after = std::min(rest.find_first_of(" \t#"), rest.size());
            value = rest.substr(0, after);
        }
        const auto hash = rest.find('#', after);
        if (hash != std::string::npos) out[value] = trim(std::string_view(rest).substr(hash + 1));
    }
    return out;
}

result<std::vector<entry>> read_entries(const YAML::Node& list, const char* key, std::string_view name,
                                        const std::map<std::string, std::string>& comments) {
    std::vector<entry> out;
    if (!list) return out;
    const std::string where = "allowlist group " + std::string(name) + ": " + key;
    if (!list.IsSequence()) return make_error(where + ": must be a list");
    for (const auto& item : list) {
        if (!item.IsScalar()) return make_error(where + ": entries must be strings");
        entry e{item.Scalar(), {}};
        const auto c = comments.find(e.value);
        if (c == comments.end() || c->second.empty())
            return make_error(where + ": " + e.value + " has no comment saying what uses it");
        e.used_by = c->second;
        const bool valid = std::string_view(key) == "cidrs" ? static_cast<bool>(core::cidr::parse(e.value))
                                                            : core::valid_glob(core::normalize_host(e.value));
        if (!valid) return make_error(where + ": invalid entry " + e.value);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<group> load_all() {
    std::vector<group> out;
    for (const auto& f : embedded_files()) {
        auto g = parse_group(f.name, f.text);
        if (!g) throw std::logic_error(g.message());
        out.push_back(std::move(g).value());
    }
    std::sort(out.begin(), out.end(), [](const group& a, const group& b) { return a.name < b.name; });
    return out;
}

}  // namespace

result<group> parse_group(std::string_view name, std::string_view text) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        return make_error("allowlist group " + std::string(name) + ": " + e.what());
    }
    if (!root.IsMap()) return make_error("allowlist group " + std::string(name) + ": not a map");
    for (const auto& kv : root) {
        const std::string key = kv.first.Scalar();
        if (key != "description" && key != "domains" && key != "cidrs")
            return make_error("allowlist group " + std::string(name) + ": unknown key " + key);
    }
    group g;
    g.name = lower(name);
    if (root["description"]) g.description = root["description"].as<std::string>();
    const auto comments = item_comments(text);
    auto domains = read_entries(root["domains"], "domains", name, comments);
    if (!domains) return domains.err();
    auto cidrs = read_entries(root["cidrs"], "cidrs", name, comments);
    if (!cidrs) return cidrs.err();
    g.domains = std::move(*domains);
    g.cidrs = std::move(*cidrs);
    if (g.domains.empty() && g.cidrs.empty())
        return make_error("allowlist group " + std::string(name) + ": no entries");
    return g;
}

const std::vector<group>& all() {
    static const std::vector<group> groups = load_all();
    return groups;
}

const group* find(std::string_view name) {
    const std::string key = lower(name);
    for (const auto& g : all())
        if (g.name == key) return &g;
    return nullptr;
}

std::string known_names() {
    std::string out;
    for (const auto& g : all()) {
        if (!out.empty()) out += ", ";
        out += g.name;
    }
    return out;
}

result<const group*> lookup(std::string_view name) {
    if (const group* g = find(name)) return g;
    return make_error("unknown allowlist group \"" + std::string(name) + "\" (known groups: " + known_names() + ")");
}

}  // namespace iron::allowlist_groups
