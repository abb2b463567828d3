// `iron-proxy audit`: the audit log as one aligned line per record, filtered, optionally followed.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "app/cli.hpp"
#include "cli/audit_view.hpp"
#include "cli/commands.hpp"
#include "cli/line_reader.hpp"
#include "core/host_glob.hpp"

namespace iron::cli {
namespace {

const char* const audit_usage =
    "Usage: iron-proxy audit [-follow] [-action allow|warn|reject|error[,…]] [-host GLOB] [-json] [FILE…]\n"
    "  Reads audit records (log.audit_path, or stderr captured to a file; stdin when no FILE or \"-\")\n"
    "  and prints one line per record: time, action, status, method, host, path, why, duration.\n"
    "  -follow      keep reading as records are written (across rotation and truncation)\n"
    "  -action A    only these actions (comma-separated); \"warn\" = let through by warn mode only\n"
    "  -host GLOB   only hosts matching GLOB (*.example.com matches example.com and its subdomains)\n"
    "  -json        print the matching records as they are (JSON lines)\n";

struct audit_options {
    bool follow = false;
    bool json = false;
    bool colour = false;
    std::set<std::string> actions;  // empty: all
    std::string host_glob;          // empty: all
    std::vector<std::string> files;
};

struct counters {
    std::size_t malformed = 0;
    std::size_t other_log = 0;
};

volatile std::sig_atomic_t interrupted = 0;
void on_interrupt(int) { interrupted = 1; }

const char* colour_of(const std::string& action) {
    if (action == "allow") return "\033[32m";
    if (action == "warn") return "\033[33m";
    if (action == "reject") return "\033[31m";
    if (action == "error") return "\033[35m";
    return "\033[36m";
}

std::string pad(std::string s, std::size_t width) {
    if (s.size() < width) s.append(width - s.size(), ' ');
    return s;
}

std::string human_line(const audit_view& v, bool colour) {
    const std::string action = v.shown_action();
    std::string why = v.rejected_by.empty() ? v.error : v.rejected_by + (v.error.empty() ? "" : ": " + v.error);
    std::string host = v.host.empty() ? "-" : v.host;
    if (!v.tunnel_target.empty() && v.method != "CONNECT") host += " (tunnel)";
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.1fms", v.duration_ms);
    std::string line = pad(v.time, 30) + "  ";
    line += colour ? std::string(colour_of(action)) + pad(action, 13) + "\033[0m" : pad(action, 13);
    line += "  " + pad(v.status ? std::to_string(v.status) : "-", 3) + "  " + pad(v.method.empty() ? "-" : v.method, 7);
    line += "  " + pad(host, 32) + "  " + pad(v.path.empty() ? "-" : v.path, 24) + "  " + pad(why.empty() ? "-" : why, 28);
    line += "  " + std::string(duration);
    return line;
}

bool selected(const audit_view& v, const audit_options& o) {
    if (!o.actions.empty() && !o.actions.count(v.shown_action())) return false;
    if (!o.host_glob.empty() && !core::match_host_glob(o.host_glob, v.policy_host())) return false;
    return true;
}

void handle_line(const std::string& line, const audit_options& o, counters& c) {
    if (line.empty()) return;
    const parsed_line p = parse_audit_line(line);
    if (p.kind == line_kind::malformed) ++c.malformed;
    if (p.kind == line_kind::other_log) ++c.other_log;
    if (!p.record || !selected(*p.record, o)) return;
    const std::string out = o.json ? line : human_line(*p.record, o.colour);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
    if (o.follow) std::fflush(stdout);
}

void report(const counters& c) {
    if (c.malformed)
        std::fprintf(stderr, "audit: skipped %zu malformed line%s\n", c.malformed, c.malformed == 1 ? "" : "s");
    if (c.other_log)
        std::fprintf(stderr, "audit: skipped %zu log line%s that %s not audit records\n", c.other_log,
                     c.other_log == 1 ? "" : "s", c.other_log == 1 ? "is" : "are");
}

int parse_options(const std::vector<std::string>& args, audit_options& o) {
    auto parsed = app::parse_flags(args, {"action", "host"}, {"follow", "f", "json", "h", "help"}, &o.files);
    if (!parsed) {
        std::fprintf(stderr, "error: %s\n%s", parsed.message().c_str(), audit_usage);
        return 2;
    }
    auto& m = *parsed;
    auto on = [&m](const char* k) { return m.count(k) && (m[k] == "true" || m[k] == "1"); };
    if (on("h") || on("help")) {
        std::fprintf(stdout, "%s", audit_usage);
        return 0;
    }
    o.follow = on("follow") || on("f");
    o.json = on("json");
    if (m.count("host")) o.host_glob = core::normalize_host(m["host"]);
    if (!o.host_glob.empty() && !core::valid_glob(o.host_glob)) {
        std::fprintf(stderr, "error: invalid -host glob \"%s\"\n", m["host"].c_str());
        return 2;
    }
    static const std::set<std::string> known = {"allow", "warn", "reject", "error", "stub", "client_cancel"};
    for (std::size_t start = 0; m.count("action") && start <= m["action"].size();) {
        const auto comma = std::min(m["action"].find(',', start), m["action"].size());
        const std::string a = m["action"].substr(start, comma - start);
        if (!known.count(a)) {
            std::fprintf(stderr, "error: unknown -action \"%s\" (allow, warn, reject, error, stub, client_cancel)\n", a.c_str());
            return 2;
        }
        o.actions.insert(a);
        start = comma + 1;
    }
    if (o.files.empty()) o.files.push_back("-");
    const char* no_colour = std::getenv("NO_COLOR");
    o.colour = !o.json && ::isatty(STDOUT_FILENO) && (no_colour == nullptr || *no_colour == '\0');
    return -1;
}

}  // namespace

int audit_command(const std::vector<std::string>& args) {
    audit_options o;
    if (int rc = parse_options(args, o); rc >= 0) return rc;
    counters c;
    auto on_line = [&o, &c](const std::string& line) { handle_line(line, o, c); };
    int rc = 0;
    if (o.follow) {
        std::signal(SIGINT, on_interrupt);
        std::signal(SIGTERM, on_interrupt);
        // A reader that went away (`| head`) ends the follow: SIGPIPE is ignored, so the write fails.
        follow_lines(o.files, on_line, [] { return interrupted == 0 && !std::ferror(stdout); });
    } else {
        for (const auto& f : o.files) {
            std::string error;
            if (!read_lines(f, on_line, error)) {
                std::fprintf(stderr, "error: %s\n", error.c_str());
                rc = 1;
            }
        }
    }
    std::fflush(stdout);
    report(c);
    return rc;
}

}  // namespace iron::cli
