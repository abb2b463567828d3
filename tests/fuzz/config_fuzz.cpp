// libFuzzer target: the config loader (config/config.cpp: strict YAML decode, IRON_* overrides,
// defaults, validation) through its from-string entry point, then, for a config it accepts, the
// transform pipeline built from it (transforms/registry.cpp and every transform's from_config), as
// `iron-proxy -check` and a start-up do.
//
// Input: the YAML text of a config file.
//
// The environment is made empty of what the loader reads (IRON_* and the *_PROXY variables) once at
// start-up, so every input means the same on every machine. Pipelines with a `file` secret source
// are not built: the fuzzer would read (or block on) whatever path it made up; the loader itself
// never touches the filesystem.
//
// Checked: a rejected config has a message; an accepted one has a source name and its lists stay
// usable (the pipeline builds or says why).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.hpp"
#include "core/log.hpp"
#include "fuzz_support.hpp"
#include "transforms/registry.hpp"

extern char** environ;

namespace {

using iron::fuzz::require;

void forget_loader_environment() {
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view kv(*e);
        std::string name(kv.substr(0, kv.find('=')));
        std::string upper = name;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (name.rfind("IRON_", 0) == 0 || upper == "HTTP_PROXY" || upper == "HTTPS_PROXY" || upper == "NO_PROXY")
            names.push_back(name);
    }
    for (const auto& n : names) ::unsetenv(n.c_str());
}

// Any scalar "file" under the transforms: possibly a `type: file` secret source.
bool mentions_file(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar() == "file";
    if (node.IsSequence() || node.IsMap()) {
        for (auto it = node.begin(); it != node.end(); ++it) {
            if (node.IsMap() ? (mentions_file(it->first) || mentions_file(it->second)) : mentions_file(*it))
                return true;
        }
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    forget_loader_environment();
    iron::log::set_level(iron::log::level::error);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto loaded = iron::config::load_string(iron::fuzz::as_text(data, size), "fuzz.yaml");
    if (!loaded) {
        require(!loaded.message().empty());
        return 0;
    }
    const iron::config::config& cfg = *loaded;
    require(cfg.source == "fuzz.yaml");
    for (const auto& t : cfg.transforms)
        if (mentions_file(t.config.node())) return 0;
    const auto built = iron::transforms::build_pipeline(cfg.transforms, cfg.source);
    if (!built) require(!built.message().empty());
    return 0;
}
