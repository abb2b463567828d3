#pragma once
// `iron-proxy version`: what a bug report or a release note needs to name this binary.
#include <string>

namespace iron::app {

// Three lines. The first is the version alone (as the Go proxy prints it, so scripts that read
// one line keep working); then "commit: <git commit>[-dirty]" and "build: <type>, <compiler>,
// flags: <flags>, sanitizers: <off|list>". The .deb and the container image carry the same version.
std::string version_text();

}  // namespace iron::app
