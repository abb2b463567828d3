// Compiled into the iron-proxy executable only (not iron_lib): its generated header changes with
// every commit, and only this file and the final link should pay for that.
#include "app/version.hpp"

#include "build_info.hpp"  // IRON_GIT_COMMIT, IRON_BUILD_FLAGS (cmake/build_info.cmake)

namespace iron::app {

std::string version_text() {
    return std::string(IRON_VERSION) + "\ncommit: " + IRON_GIT_COMMIT + "\nbuild: " + IRON_BUILD_FLAGS + "\n";
}

}  // namespace iron::app
