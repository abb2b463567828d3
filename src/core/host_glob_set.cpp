#include "core/host_glob_set.hpp"

#include "core/host_glob.hpp"

namespace iron::core {
namespace {

// Without these, path.Match compares byte for byte, so the pattern matches only itself.
bool is_literal(std::string_view pattern) { return pattern.find_first_of("*?[\\") == std::string_view::npos; }

bool is_subdomain_glob(std::string_view pattern) { return pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.'; }

}  // namespace

host_glob_set::host_glob_set(const std::vector<std::string>& patterns) {
    for (const auto& p : patterns) add(p);
}

// The order of the checks mirrors match_host_glob, so each pattern lands in the bucket whose
// lookup reproduces the branch that function would take for it.
void host_glob_set::add(std::string_view pattern) {
    if (pattern == "*") {
        match_all_ = true;
    } else if (is_subdomain_glob(pattern)) {
        apexes_.emplace(pattern.substr(2));
    } else if (is_literal(pattern)) {
        exact_.emplace(pattern);
    } else {
        globs_.emplace_back(pattern);
    }
}

bool host_glob_set::matches_any(std::string_view host) const {
    if (match_all_) return true;
    if (!exact_.empty() && exact_.contains(host)) return true;
    if (!apexes_.empty() && matches_apex_or_parent(host)) return true;
    for (const auto& g : globs_) {
        if (match_host_glob(g, host)) return true;
    }
    return false;
}

// "*.<apex>" matches host == apex or host ending in "." + apex. The second is the same as: the
// text after some '.' of the host is the apex. So try the host and the tail after each of its
// dots (every dot, even doubled or trailing ones, since the apex is compared literally).
bool host_glob_set::matches_apex_or_parent(std::string_view host) const {
    if (apexes_.contains(host)) return true;
    for (std::size_t dot = host.find('.'); dot != std::string_view::npos; dot = host.find('.', dot + 1)) {
        if (apexes_.contains(host.substr(dot + 1))) return true;
    }
    return false;
}

}  // namespace iron::core
