// iron-proxy: argv → load config → app::run. Go `flag` syntax: -config x, --config x, -config=x.
#include <unistd.h>

#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "app/app.hpp"
#include "app/cli.hpp"
#include "app/embedded_default.hpp"
#include "app/version.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "core/log.hpp"
#include "tls/ca.hpp"

using namespace iron;

int main(int argc, char** argv) {
    // A closed stdout/stderr pipe must not kill the proxy mid-request; writes just fail.
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "version" || args[0] == "--version" || args[0] == "-v")) {
        std::printf("%s", app::version_text().c_str());
        return 0;
    }
    if (!args.empty() && args[0] == "generate-ca") return app::generate_ca_command({args.begin() + 1, args.end()});
    if (!args.empty() && args[0] == "audit") return cli::audit_command({args.begin() + 1, args.end()});
    if (!args.empty() && args[0] == "allowlist") return cli::allowlist_command({args.begin() + 1, args.end()});
    if (!args.empty() && args[0] == "egress") return cli::egress_command({args.begin() + 1, args.end()});

    auto flags = app::parse_main_flags(args);
    if (!flags) {
        std::fprintf(stderr, "error: %s\n%s", flags.message().c_str(), app::usage().c_str());
        return 2;
    }
    if (flags->help) {
        std::fprintf(stderr, "%s", app::usage().c_str());
        return 0;
    }
    if (!flags->token.empty()) {
        std::fprintf(stderr, "error: managed mode (-token / IRON_PROXY_TOKEN) is not yet supported by this build\n");
        return 1;
    }

    // -check answers with exactly one line, `config OK: PATH` or `error: …`: warnings met on the
    // way (a secret source that cannot be read yet, an ignored key) are not part of that answer.
    if (flags->check) log::silence();

    app::run_options opts;
    result<config::config> cfg = make_error("");
    if (flags->config_path.empty()) {
        auto dir = app::prepare_state_dir();
        if (!dir) {
            std::fprintf(stderr, "error: %s\n", dir.message().c_str());
            return 1;
        }
        opts.embedded_default = true;
        opts.state_dir = *dir;
        cfg = config::load_string(config::embedded_default_yaml_for(*dir), "<embedded default>");
    } else {
        cfg = config::load_file(flags->config_path);
    }
    if (!cfg) {
        std::fprintf(stderr, "error: %s\n", cfg.message().c_str());
        return 1;
    }
    if (opts.embedded_default && !cfg->management.listen.empty()) {
        // Go refuses this at start-up too (same message): a reload re-reads the -config file, and
        // there is none.
        std::fprintf(stderr,
                     "error: management.listen requires --config in standalone mode; /v1/reload has no file to re-read\n");
        return 1;
    }
    if (flags->check) {
        if (auto r = app::check(*cfg); !r) {
            std::fprintf(stderr, "error: %s\n", r.message().c_str());
            return 1;
        }
        std::printf("config OK: %s\n", cfg->source.c_str());
        return 0;
    }
    int rc = app::run(*cfg, opts);
    // Exit without unwinding thousands of live connection frames; the kernel closes every socket.
    std::fflush(nullptr);
    _exit(rc);
}
