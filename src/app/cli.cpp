#include "app/cli.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>

#include "tls/ca.hpp"

namespace iron::app {

namespace {

// Splits "-name=value" / "--name" forms. Returns false for a non-flag argument.
bool split_flag(const std::string& arg, std::string& name, std::string& value, bool& has_value) {
    if (arg.size() < 2 || arg[0] != '-') return false;
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    auto eq = body.find('=');
    has_value = eq != std::string::npos;
    name = has_value ? body.substr(0, eq) : body;
    value = has_value ? body.substr(eq + 1) : "";
    return !name.empty();
}

bool truthy(const std::string& v) { return v == "true" || v == "1"; }

}  // namespace

result<std::map<std::string, std::string>> parse_flags(const std::vector<std::string>& args,
                                                       const std::vector<std::string>& strings,
                                                       const std::vector<std::string>& bools,
                                                       std::vector<std::string>* positionals) {
    std::map<std::string, std::string> out;
    auto is = [](const std::vector<std::string>& v, const std::string& n) {
        for (const auto& s : v) if (s == n) return true;
        return false;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string name, value;
        bool has_value = false;
        if (args[i] == "--") {
            if (positionals) positionals->insert(positionals->end(), args.begin() + i + 1, args.end());
            break;
        }
        if (args[i] == "-" || !split_flag(args[i], name, value, has_value)) {
            if (positionals) positionals->push_back(args[i]);
            continue;
        }
        if (is(bools, name)) {
            if (has_value && value != "true" && value != "false" && value != "1" && value != "0")
                return make_error("invalid boolean value \"" + value + "\" for -" + name);
            out[name] = has_value ? value : "true";
        } else if (is(strings, name)) {
            if (!has_value) {
                if (i + 1 >= args.size()) return make_error("flag needs an argument: -" + name);
                value = args[++i];
            }
            out[name] = value;
        } else {
            return make_error("flag provided but not defined: -" + name);
        }
    }
    return out;
}

std::string usage() {
    return "Usage: iron-proxy [-config PATH] [-check]\n"
           "       iron-proxy generate-ca [-outdir DIR] [-name CN] [-expiry-hours N] [-alg ecdsa-p256|rsa4096|rsa2048|ed25519]\n"
           "       iron-proxy audit [-follow] [-action A] [-host GLOB] [-json] [FILE...]\n"
           "       iron-proxy allowlist groups [NAME] | suggest [-min-count N] [-collapse] FILE...\n"
           "       iron-proxy egress list | add -host H | add -cidr C | remove ID | mode warn|enforce [-management ADDR] [-config FILE]\n"
           "       iron-proxy version        (version, git commit, build flags)\n"
           "  -config PATH   YAML config (omit to run the embedded default config)\n"
           "  -check         validate the config (and CA) and exit\n";
}

result<main_flags> parse_main_flags(const std::vector<std::string>& args) {
    auto parsed = parse_flags(args, {"config", "token"}, {"check", "h", "help"});
    if (!parsed) return parsed.err();
    main_flags f;
    auto& m = *parsed;
    if (m.count("config")) f.config_path = m["config"];
    if (m.count("token")) f.token = m["token"];
    if (f.token.empty()) {
        if (const char* t = std::getenv("IRON_PROXY_TOKEN"); t && *t) f.token = t;
    }
    f.check = m.count("check") && truthy(m["check"]);
    f.help = (m.count("h") && truthy(m["h"])) || (m.count("help") && truthy(m["help"]));
    return f;
}

int generate_ca_command(const std::vector<std::string>& args) {
    auto parsed = parse_flags(args, {"outdir", "name", "expiry-hours", "alg"}, {"h", "help"});
    if (!parsed) {
        std::fprintf(stderr, "error: %s\n%s", parsed.message().c_str(), usage().c_str());
        return 2;
    }
    auto& m = *parsed;
    if (m.count("h") || m.count("help")) {
        std::fprintf(stderr, "%s", usage().c_str());
        return 0;
    }
    tls::generate_ca_options o;
    if (m.count("outdir")) o.outdir = m["outdir"];
    if (m.count("name")) o.name = m["name"];
    if (m.count("alg")) o.alg = m["alg"];
    if (m.count("expiry-hours")) {
        char* end = nullptr;
        long h = std::strtol(m["expiry-hours"].c_str(), &end, 10);
        if (m["expiry-hours"].empty() || *end != '\0' || h <= 0 || h > 24L * 365 * 30) {
            std::fprintf(stderr, "error: invalid value \"%s\" for -expiry-hours\n", m["expiry-hours"].c_str());
            return 2;
        }
        o.expiry_hours = static_cast<int>(h);
    }
    auto made = tls::generate_ca(o);
    if (!made) {
        std::fprintf(stderr, "error: %s\n", made.message().c_str());
        return 1;
    }
    std::printf("wrote %s\nwrote %s\n", made->cert_path.c_str(), made->key_path.c_str());
    return 0;
}

}  // namespace iron::app
