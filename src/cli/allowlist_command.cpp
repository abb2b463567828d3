// `iron-proxy allowlist groups [NAME]` and `iron-proxy allowlist suggest …`.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "allowlist_groups/groups.hpp"
#include "app/cli.hpp"
#include "cli/audit_view.hpp"
#include "cli/commands.hpp"
#include "cli/line_reader.hpp"
#include "cli/suggest.hpp"

namespace iron::cli {
namespace {

const char* const allowlist_usage =
    "Usage: iron-proxy allowlist groups [NAME]\n"
    "         list the rule groups an allowlist can name in `groups:`, or one group's entries\n"
    "       iron-proxy allowlist suggest [-min-count N] [-collapse] [-collapse-min N] FILE…\n"
    "         read audit records (\"-\" = stdin) and print an allowlist transform admitting what they show\n"
    "  -min-count N     leave out hosts seen fewer than N times (default 1)\n"
    "  -collapse        fold sibling hosts a.x.com, b.x.com, … into \"*.x.com\"\n"
    "  -collapse-min N  how many siblings -collapse needs (default 3)\n";

std::string padded(const std::string& s, std::size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

int list_groups() {
    for (const auto& g : allowlist_groups::all()) {
        const std::string counts = std::to_string(g.domains.size()) + " domains" +
                                   (g.cidrs.empty() ? "" : ", " + std::to_string(g.cidrs.size()) + " cidrs");
        std::printf("%s  %s  %s\n", padded(g.name, 10).c_str(), padded(counts, 20).c_str(), g.description.c_str());
    }
    return 0;
}

int show_group(const std::string& name) {
    auto g = allowlist_groups::lookup(name);
    if (!g) {
        std::fprintf(stderr, "error: %s\n", g.message().c_str());
        return 1;
    }
    std::printf("# %s: %s\n", (*g)->name.c_str(), (*g)->description.c_str());
    for (const auto& e : (*g)->domains)
        std::printf("domain  %s  # %s\n", padded(e.value, 38).c_str(), e.used_by.c_str());
    for (const auto& e : (*g)->cidrs)
        std::printf("cidr    %s  # %s\n", padded(e.value, 38).c_str(), e.used_by.c_str());
    return 0;
}

bool parse_count(const std::string& text, std::size_t& out) {
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < 1 || v > 1000000000) return false;
    out = static_cast<std::size_t>(v);
    return true;
}

int suggest(const std::vector<std::string>& args) {
    std::vector<std::string> files;
    auto parsed = app::parse_flags(args, {"min-count", "collapse-min"}, {"collapse"}, &files);
    if (!parsed) {
        std::fprintf(stderr, "error: %s\n%s", parsed.message().c_str(), allowlist_usage);
        return 2;
    }
    auto& m = *parsed;
    suggest_options o;
    o.collapse = m.count("collapse") && (m["collapse"] == "true" || m["collapse"] == "1");
    for (auto [flag, target] : {std::pair{"min-count", &o.min_count}, std::pair{"collapse-min", &o.collapse_min}}) {
        if (m.count(flag) && !parse_count(m[flag], *target)) {
            std::fprintf(stderr, "error: invalid value \"%s\" for -%s (a positive number)\n", m[flag].c_str(), flag);
            return 2;
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "error: allowlist suggest needs at least one audit FILE (\"-\" for stdin)\n%s", allowlist_usage);
        return 2;
    }
    suggestion s;
    std::size_t malformed = 0;
    for (const auto& f : files) {
        std::string error;
        const bool read = read_lines(f, [&](const std::string& line) {
            if (line.empty()) return;
            const parsed_line p = parse_audit_line(line);
            if (p.record) s.add(*p.record);
            if (p.kind == line_kind::malformed) ++malformed;
        }, error);
        if (!read) {
            std::fprintf(stderr, "error: %s\n", error.c_str());
            return 1;
        }
    }
    const std::string yaml = s.yaml(o, std::to_string(files.size()) + (files.size() == 1 ? " input" : " inputs"));
    std::fwrite(yaml.data(), 1, yaml.size(), stdout);
    if (malformed) std::fprintf(stderr, "allowlist suggest: skipped %zu malformed line%s\n", malformed, malformed == 1 ? "" : "s");
    return 0;
}

// -h anywhere: `allowlist suggest -h` must not read "-h" as a file, nor `groups -h` as a group name.
bool asks_for_help(const std::vector<std::string>& args) {
    return std::any_of(args.begin(), args.end(),
                       [](const std::string& a) { return a == "-h" || a == "--help" || a == "-help" || a == "help"; });
}

}  // namespace

int allowlist_command(const std::vector<std::string>& args) {
    if (args.empty() || asks_for_help(args)) {
        std::fprintf(args.empty() ? stderr : stdout, "%s", allowlist_usage);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "groups") {
        if (args.size() > 2) {
            std::fprintf(stderr, "error: allowlist groups takes at most one NAME\n%s", allowlist_usage);
            return 2;
        }
        return args.size() == 2 ? show_group(args[1]) : list_groups();
    }
    if (args[0] == "suggest") return suggest({args.begin() + 1, args.end()});
    std::fprintf(stderr, "error: unknown allowlist command \"%s\"\n%s", args[0].c_str(), allowlist_usage);
    return 2;
}

}  // namespace iron::cli
