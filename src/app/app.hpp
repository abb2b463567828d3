#pragma once
// Owns the process: builds the runtime from a config, starts one worker per core (each with its
// own io_context, resolver, upstream pool and SO_REUSEPORT acceptors), handles signals and shuts
// down. Wiring only: behaviour lives in the folders it wires together.
#include <string>

#include "config/config.hpp"

namespace iron::app {

struct run_options {
    bool embedded_default = false;  // print the how-to-try banner
    std::string state_dir;          // where the embedded default keeps its CA
};

// Runs until SIGINT/SIGTERM. Returns the process exit code; start-up errors print
// "error: <message>" and return 1.
int run(const config::config& cfg, const run_options& opts);

// Validate everything `run` would, without binding: the `-check` flag.
result<void> check(const config::config& cfg);

}  // namespace iron::app
