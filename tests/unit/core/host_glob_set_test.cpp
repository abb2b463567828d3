#include "core/host_glob_set.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/host_glob.hpp"

namespace iron::core {
namespace {

// The reference the set must reproduce: what every caller did before the set existed.
bool linear_any(const std::vector<std::string>& patterns, std::string_view host) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return match_host_glob(p, host); });
}

TEST(HostGlobSet, EmptyMatchesNothing) {
    host_glob_set s;
    EXPECT_TRUE(s.empty());
    EXPECT_FALSE(s.matches_any(""));
    EXPECT_FALSE(s.matches_any("example.com"));
}

TEST(HostGlobSet, Table) {
    struct sc {
        const char* pattern;
        const char* host;
        bool match;
    };
    const sc cases[] = {
        {"*", "", true},
        {"*", "10.0.0.1", true},
        {"example.com", "example.com", true},
        {"example.com", "a.example.com", false},
        {"Example.com", "example.com", false},  // case-sensitive, as match_host_glob
        {"*.x.com", "x.com", true},
        {"*.x.com", "a.b.x.com", true},
        {"*.x.com", "ax.com", false},
        {"*.x.com", "x.com.", false},
        {"*.", "", true},        // apex "" ...
        {"*.", "a.", true},      // ... and anything ending in "."
        {"*.", "a", false},
        {"*..com", "a..com", true},  // the apex ".com" after the first of the two dots
        {"*..com", ".com", true},
        {"*..com", "a.com", false},
        {"*.a*b", "x.a*b", true},  // the suffix of "*." is literal, metacharacters included
        {"*.a*b", "x.axxb", false},
        {"api.*.com", "api.x.y.com", true},
        {"10.0.0.?", "10.0.0.7", true},
        {"a]b", "a]b", true},  // ']' alone is not a metacharacter
        {"", "", true},
        {"", "a", false},
        {"api[", "api[", false},  // malformed never matches
        {"\\", "\\", false},
    };
    for (const auto& c : cases) {
        host_glob_set s({c.pattern});
        EXPECT_EQ(s.matches_any(c.host), c.match) << c.pattern << " vs " << c.host;
        EXPECT_EQ(match_host_glob(c.pattern, c.host), c.match) << "reference: " << c.pattern << " vs " << c.host;
    }
}

// ---- Differential test: the set against the linear loop over a generated corpus -----------------

// Labels chosen to collide often (so generated hosts hit generated patterns) and to cover the odd
// cases: empty labels (doubled dots), upper case, digits for IP-ish names, non-ASCII, '-'.
const std::vector<std::string> labels = {"a", "b", "x", "api", "com", "ex-ample", "A", "Com", "10", "0",
                                         "1", "", "xn--bcher-kva", "\xc3\xa4", "io"};

// Glob pieces spliced into names: valid ('*', '?', classes, escapes) and malformed ones.
const std::vector<std::string> glob_pieces = {"*", "?", "[a-c]", "[^a]", "[!a]", "\\.", "\\a", "\\*", "[\\]]",
                                              "[x\\-]", "**", "*.", ".*", "[", "[]a]", "[a-", "[-x]", "\\"};

const std::vector<std::string> special_patterns = {
    "*", "*.", "**", "*.*", "", ".", "..", "*..", "*..com", "*.a*b", "*.[", "10.0.0.*", "10.0.?.1", "::1",
    "[::1]", "10.0.0.1", "2001:db8::*", "a.b:443", "*.b:443", "*:443", "a/b", "a*", "*a", "?", "\\"};

const std::vector<std::string> special_hosts = {
    "", ".", "..", "*", "?", "[", "\\", "]", "10.0.0.1", "10.0.0.12", "10.0.1.1", "::1", "[::1]",
    "2001:db8::1", "a.b:443", "x.b:443", "\xff", "\xc3\xa4.com", "a/b", "x.a/b", "a*b", "x.a*b", "a.b", "A.B"};

class corpus_gen {
public:
    explicit corpus_gen(unsigned seed) : rng_(seed) {}

    std::string name() {
        std::string out = pick(labels);
        for (int n = below(4); n > 0; --n) out += "." + pick(labels);
        if (below(8) == 0) out += ".";  // trailing dot: not normalised at this layer
        return out;
    }

    std::string pattern() {
        switch (below(6)) {
            case 0: case 1: return name();                      // exact
            case 2: return "*." + name();                       // apex and subdomains
            case 3: return pick(special_patterns);
            default: return mutated(name());                    // general glob, maybe malformed
        }
    }

    // Hosts that should often match `p`, plus near misses.
    std::vector<std::string> hosts_for(const std::string& p) {
        std::string inst = instantiate(p);
        return {inst, "z." + inst, "z.y." + inst, "z" + inst, inst + ".", upper(inst), inst.substr(0, inst.size() / 2)};
    }

private:
    int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
    const std::string& pick(const std::vector<std::string>& v) { return v[static_cast<std::size_t>(below(static_cast<int>(v.size())))]; }

    std::string mutated(std::string s) {
        for (int n = 1 + below(2); n > 0; --n) {
            std::size_t at = static_cast<std::size_t>(below(static_cast<int>(s.size()) + 1));
            std::size_t len = (at < s.size() && below(2) == 0) ? 1 : 0;  // insert or replace one char
            s.replace(at, len, pick(glob_pieces));
        }
        return s;
    }

    // A host the glob would plausibly match: '*' becomes "", "q" or "q.r", '?' one char, a class
    // its first member, an escape the escaped char. Malformed leftovers are copied as they are.
    std::string instantiate(const std::string& p) {
        static const char* star_fill[] = {"", "q", "q.r"};
        std::string out;
        for (std::size_t i = 0; i < p.size(); ++i) {
            char c = p[i];
            if (c == '*') {
                out += star_fill[below(3)];
            } else if (c == '?') {
                out += "a-."[below(3)];
            } else if (c == '\\' && i + 1 < p.size()) {
                out += p[++i];
            } else if (c == '[' && p.find(']', i + 2) != std::string::npos) {
                std::size_t j = i + 1;
                if (p[j] == '^') ++j;
                if (p[j] == '\\' && j + 1 < p.size()) ++j;
                out += p[j];
                std::size_t close = p.find(']', j + 1);
                i = close == std::string::npos ? p.size() : close;
            } else {
                out += c;
            }
        }
        return out;
    }

    static std::string upper(std::string s) {
        for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return s;
    }

    std::mt19937 rng_;
};

struct corpus {
    std::vector<std::string> patterns;
    std::vector<std::string> hosts;
};

corpus make_corpus(unsigned seed, std::size_t n_patterns) {
    corpus_gen gen(seed);
    corpus c;
    c.patterns = special_patterns;
    c.hosts = special_hosts;
    while (c.patterns.size() < n_patterns) c.patterns.push_back(gen.pattern());
    for (const auto& p : c.patterns) {
        for (auto& h : gen.hosts_for(p)) c.hosts.push_back(std::move(h));
    }
    for (int i = 0; i < 300; ++i) c.hosts.push_back(gen.name());
    return c;
}

// Runs `check` for every host and counts disagreements, printing the first few.
template <class Check>
int count_mismatches(const corpus& c, const std::string& what, Check check) {
    int bad = 0;
    for (const auto& h : c.hosts) {
        if (check(h)) continue;
        if (++bad <= 10) ADD_FAILURE() << what << " disagrees with the linear loop for host \"" << h << "\"";
    }
    return bad;
}

std::string describe(const std::vector<std::string>& ps) {
    std::ostringstream os;
    for (const auto& p : ps) os << " \"" << p << "\"";
    return os.str();
}

// Which branch of match_host_glob a pattern takes, so the test can show each one was exercised.
enum kind { match_all, subdomains, literal, glob, malformed, n_kinds };
kind kind_of(const std::string& p) {
    if (p == "*") return match_all;
    if (p.size() >= 2 && p[0] == '*' && p[1] == '.') return subdomains;
    if (p.find_first_of("*?[\\") == std::string::npos) return literal;
    return valid_glob(p) ? glob : malformed;
}

TEST(HostGlobSet, AgreesWithLinearLoopPerPattern) {
    const corpus c = make_corpus(1, 600);
    long patterns[n_kinds] = {}, hits[n_kinds] = {}, misses[n_kinds] = {};
    for (const auto& p : c.patterns) {
        const host_glob_set s({p});
        const kind k = kind_of(p);
        ++patterns[k];
        int bad = count_mismatches(c, "pattern \"" + p + "\"", [&](const std::string& h) {
            bool want = match_host_glob(p, h);
            ++(want ? hits[k] : misses[k]);
            return s.matches_any(h) == want;
        });
        ASSERT_EQ(bad, 0) << "pattern \"" << p << "\"";
    }
    // Every branch must be exercised with both answers (malformed: misses only), or agreement
    // proves little.
    for (kind k : {subdomains, literal, glob}) {
        EXPECT_GT(patterns[k], 50) << "kind " << k;
        EXPECT_GT(hits[k], 1000) << "kind " << k;
        EXPECT_GT(misses[k], 100000) << "kind " << k;
    }
    EXPECT_GT(hits[match_all], 0);
    EXPECT_GT(patterns[malformed], 20);
    EXPECT_EQ(hits[malformed], 0);
}

// Catch-alls like "*" or "**" would make every mixed set answer "yes" to nearly every host.
std::vector<std::string> selective_patterns(const corpus& c) {
    std::vector<std::string> out;
    for (const auto& p : c.patterns) {
        auto hits = std::count_if(c.hosts.begin(), c.hosts.end(), [&](const std::string& h) { return match_host_glob(p, h); });
        if (static_cast<std::size_t>(hits) * 50 < c.hosts.size()) out.push_back(p);
    }
    return out;
}

// Compares the set built from `patterns` with the linear loop on every host of the corpus;
// returns how many hosts matched so callers can check that both answers were exercised.
long check_set(const corpus& c, const std::vector<std::string>& patterns) {
    const host_glob_set s(patterns);
    long hits = 0;
    int bad = count_mismatches(c, "set" + describe(patterns), [&](const std::string& h) {
        bool want = linear_any(patterns, h);
        hits += want;
        return s.matches_any(h) == want;
    });
    EXPECT_EQ(bad, 0);
    return hits;
}

TEST(HostGlobSet, AgreesWithLinearLoopOnMixedSets) {
    const corpus c = make_corpus(2, 600);
    const auto pool = selective_patterns(c);
    ASSERT_GT(pool.size(), 400u);
    std::mt19937 rng(3);
    long hits = 0, checks = 0;
    for (int round = 0; round < 200 && !HasFailure(); ++round) {
        std::vector<std::string> subset;
        const int n = std::uniform_int_distribution<int>(2, 40)(rng);
        for (int i = 0; i < n; ++i) subset.push_back(pool[rng() % pool.size()]);
        hits += check_set(c, subset);
        checks += static_cast<long>(c.hosts.size());
    }
    EXPECT_GT(hits, checks / 50);
    EXPECT_GT(checks - hits, checks / 2);
}

TEST(HostGlobSet, AgreesWithLinearLoopOnWholeCorpus) {
    const corpus c = make_corpus(4, 1000);
    long hits = check_set(c, selective_patterns(c));
    const auto n = static_cast<long>(c.hosts.size());
    EXPECT_GT(hits, n / 4);
    EXPECT_GT(n - hits, n / 10);
}

}  // namespace
}  // namespace iron::core
