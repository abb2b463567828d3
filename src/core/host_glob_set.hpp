#pragma once
// A list of host globs (host_glob.hpp) compiled once so that "does any of them match this host?"
// costs one hash lookup per label instead of one glob match per pattern: a 1,000-entry allowlist
// is checked on every CONNECT and every request.
//
// It answers exactly what the linear loop `any_of(patterns, match_host_glob(p, host))` answers, for
// any pattern and any host (no normalisation happens here: callers normalise both sides as before).
// Patterns are sorted into buckets by the branch match_host_glob would take for them:
//   "*"              -> a flag;
//   "*.<apex>"       -> a hash set of apexes; the host matches if it is an apex or if the part after
//                       any of its dots is one (the suffix is literal, metacharacters included);
//   no *, ?, [ or \  -> a hash set of exact names (path.Match of such a pattern is plain equality);
//   anything else    -> a vector of general globs, matched one by one with match_host_glob
//                       (malformed ones included, so they keep never matching exactly as before).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace iron::core {

class host_glob_set {
public:
    host_glob_set() = default;
    explicit host_glob_set(const std::vector<std::string>& patterns);

    void add(std::string_view pattern);

    // Does any added pattern match `host`? Allocation-free.
    bool matches_any(std::string_view host) const;
    bool empty() const { return !match_all_ && exact_.empty() && apexes_.empty() && globs_.empty(); }

private:
    // Transparent hashing lets lookups take a std::string_view without building a std::string.
    struct view_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using name_set = std::unordered_set<std::string, view_hash, std::equal_to<>>;

    bool matches_apex_or_parent(std::string_view host) const;

    bool match_all_ = false;
    name_set exact_;
    name_set apexes_;                 // "x.com" for "*.x.com"
    std::vector<std::string> globs_;  // in the order added
};

}  // namespace iron::core
