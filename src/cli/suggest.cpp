#include "cli/suggest.hpp"

#include <algorithm>

#include "allowlist_groups/groups.hpp"
#include "core/cidr.hpp"
#include "core/host_glob.hpp"

namespace iron::cli {
namespace {

// Hosts come from the network: only plain DNS names and IP literals are written into the YAML, so
// no recorded host can add a line, a key or a comment to the suggestion.
bool safe_dns_name(const std::string& h) {
    if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-') return false;
    return std::all_of(h.begin(), h.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    });
}

bool safe_method(const std::string& m) {
    return !m.empty() && m.size() <= 32 && std::all_of(m.begin(), m.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
    });
}

void merge(host_seen& into, const host_seen& from) {
    into.count += from.count;
    into.methods.insert(from.methods.begin(), from.methods.end());
}

std::string comment(const host_seen& s) {
    std::string out = std::to_string(s.count) + (s.count == 1 ? " request" : " requests");
    std::string sep = ": ";
    for (const auto& m : s.methods) {
        out += sep + m;
        sep = ", ";
    }
    return out;
}

using host_map = std::map<std::string, host_seen>;

struct plan {
    std::map<std::string, host_seen> groups;   // group name -> what it covers
    std::map<std::string, host_seen> domains;  // glob -> what it covers
    std::map<std::string, host_seen> cidrs;    // "ip/len" -> what it covers
    std::vector<std::string> notes;            // comments after the transform
};

// Groups whose every domain entry matched a seen host. CIDR entries are not required: the proxy
// sees only the HTTP(S) names of a group, never e.g. GitHub's SSH ranges.
void choose_groups(host_map& names, plan& p) {
    for (const auto& g : allowlist_groups::all()) {
        std::size_t seen = 0;
        for (const auto& d : g.domains) {
            const std::string glob = core::normalize_host(d.value);
            seen += std::any_of(names.begin(), names.end(),
                                [&](const auto& kv) { return core::match_host_glob(glob, kv.first); });
        }
        if (seen == 0 || g.domains.empty()) continue;
        if (seen < g.domains.size()) {
            p.notes.push_back("group " + g.name + ": " + std::to_string(seen) + " of " +
                              std::to_string(g.domains.size()) + " entries seen (`iron-proxy allowlist groups " +
                              g.name + "`)");
            continue;
        }
        host_seen& covered = p.groups[g.name];
        for (auto it = names.begin(); it != names.end();) {
            const bool in_group = std::any_of(g.domains.begin(), g.domains.end(), [&](const auto& d) {
                return core::match_host_glob(core::normalize_host(d.value), it->first);
            });
            if (!in_group) {
                ++it;
                continue;
            }
            merge(covered, it->second);
            it = names.erase(it);
        }
    }
}

std::string parent_of(const std::string& host) {
    const auto dot = host.find('.');
    return dot == std::string::npos ? std::string() : host.substr(dot + 1);
}

// `*.parent` for every parent (of two labels or more) with at least `min` seen children; every
// name such a glob matches folds into it.
void collapse(host_map& names, std::size_t min, plan& p) {
    std::map<std::string, std::size_t> children;
    for (const auto& [host, _] : names) {
        const std::string parent = parent_of(host);
        if (parent.find('.') != std::string::npos) ++children[parent];
    }
    std::vector<std::string> globs;
    for (const auto& [parent, n] : children)
        if (n >= min) globs.push_back("*." + parent);
    // The shortest glob first, so a name under two chosen parents folds into the wider one.
    std::sort(globs.begin(), globs.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
    for (const auto& glob : globs) {
        for (auto it = names.begin(); it != names.end();) {
            if (!core::match_host_glob(glob, it->first)) {
                ++it;
                continue;
            }
            merge(p.domains[glob], it->second);
            it = names.erase(it);
        }
    }
}

std::string cidr_of(const std::string& ip_text) {
    const auto ip = core::ip_address::parse(ip_text);
    return ip->to_string() + (ip->is_v4 ? "/32" : "/128");
}

void write_list(std::string& out, const char* key, const std::map<std::string, host_seen>& entries, bool quote) {
    if (entries.empty()) return;
    out += std::string("      ") + key + ":\n";
    for (const auto& [value, seen] : entries) {
        const std::string item = quote ? "\"" + value + "\"" : value;
        std::string line = "        - " + item;
        if (line.size() < 48) line.append(48 - line.size(), ' ');
        out += line + "  # " + comment(seen) + "\n";
    }
}

}  // namespace

void suggestion::add(const audit_view& record) {
    ++records_;
    const std::string host = record.policy_host();
    if (host.empty()) return;
    host_seen& seen = hosts_[host];
    ++seen.count;
    if (safe_method(record.method)) seen.methods.insert(record.method);
}

std::string suggestion::yaml(const suggest_options& options, const std::string& sources) const {
    plan p;
    host_map names;
    std::vector<std::string> below, unsafe;
    for (const auto& [host, seen] : hosts_) {
        if (is_ip_literal(host)) {
            if (seen.count >= options.min_count) merge(p.cidrs[cidr_of(host)], seen);
            else below.push_back(host + " (" + std::to_string(seen.count) + ")");
        } else if (!safe_dns_name(host)) {
            unsafe.push_back(std::to_string(seen.count));
        } else if (seen.count >= options.min_count) {
            names[host] = seen;
        } else {
            below.push_back(host + " (" + std::to_string(seen.count) + ")");
        }
    }
    choose_groups(names, p);
    if (options.collapse) collapse(names, options.collapse_min, p);
    for (auto& [host, seen] : names) merge(p.domains[host], seen);

    std::string out = "# Suggested by `iron-proxy allowlist suggest` from " + std::to_string(records_) +
                      " audit records (" + sources + ").\n# Review it, then append it to a config without "
                      "`transforms:`: cat base.yaml suggested.yaml > enforce.yaml\n";
    out += "transforms:\n  - name: allowlist\n    config:\n";
    write_list(out, "groups", p.groups, false);
    write_list(out, "domains", p.domains, true);
    write_list(out, "cidrs", p.cidrs, true);
    if (p.groups.empty() && p.domains.empty() && p.cidrs.empty()) out += "      domains: []  # nothing was seen: deny everything\n";
    for (const auto& n : p.notes) out += "# partly seen: " + n + "\n";
    if (!below.empty()) {
        out += "# below -min-count " + std::to_string(options.min_count) + ":";
        for (const auto& b : below) out += " " + b;
        out += "\n";
    }
    if (!unsafe.empty()) out += "# left out: " + std::to_string(unsafe.size()) + " hosts that are not DNS names or IP addresses\n";
    return out;
}

}  // namespace iron::cli
