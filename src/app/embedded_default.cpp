#include "app/embedded_default.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "core/log.hpp"
#include "tls/ca.hpp"

namespace iron::app {

result<std::string> prepare_state_dir() {
    std::string dir;
    if (const char* s = std::getenv("IRON_STATE_DIR"); s && *s) dir = s;
    else if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) dir = std::string(x) + "/iron-proxy";
    else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.local/state/iron-proxy";
    else return make_error("cannot find a state directory: set IRON_STATE_DIR or HOME");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error("creating state directory " + dir + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    if (!std::filesystem::exists(dir + "/ca.crt") && !std::filesystem::exists(dir + "/ca.key")) {
        tls::generate_ca_options o;
        o.outdir = dir;
        auto made = tls::generate_ca(o);
        if (!made) return make_error("creating the default CA: " + made.message());
        log::info("created a CA for the embedded default config", {{"ca_cert", made->cert_path}});
    }
    return dir;
}

void print_banner(const std::string& state_dir, const std::string& tunnel_addr, const std::string& http_addr) {
    std::fprintf(stderr,
                 "\n"
                 "  iron-proxy is running on its embedded default config (default-deny; only example.com\n"
                 "  and *.example.com are allowed). Try it:\n\n"
                 "    curl -x http://%s --cacert %s/ca.crt https://example.com/   # allowed\n"
                 "    curl -x http://%s --cacert %s/ca.crt https://github.com/    # 403: not allowlisted\n"
                 "    curl -x http://%s http://example.com/                                # plain HTTP\n\n"
                 "  Audit records (one JSON line per request) follow on stderr. Write your own config\n"
                 "  (see README.md) and run: iron-proxy -config proxy.yaml\n\n",
                 tunnel_addr.c_str(), state_dir.c_str(), tunnel_addr.c_str(), state_dir.c_str(), http_addr.c_str());
}

}  // namespace iron::app
