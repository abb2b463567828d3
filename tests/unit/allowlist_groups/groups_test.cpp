#include "allowlist_groups/groups.hpp"

#include <gtest/gtest.h>

#include <set>

#include "allowlist_groups/embedded.hpp"
#include "core/host_glob.hpp"

namespace iron::allowlist_groups {
namespace {

// The groups the sandbox model starts every VM with, and a representative host of each that the
// group must admit (what its tools really contact).
TEST(AllowlistGroups, EveryDefaultGroupIsThere) {
    const std::pair<const char*, std::vector<const char*>> expected[] = {
        {"github", {"github.com", "api.github.com", "codeload.github.com", "objects.githubusercontent.com", "ghcr.io",
                    "x.actions.githubusercontent.com"}},
        {"apt", {"deb.debian.org", "security.debian.org", "mirrors.edge.kernel.org"}},
        {"node", {"registry.npmjs.org", "registry.yarnpkg.com", "nodejs.org", "repo.yarnpkg.com"}},
        {"pypi", {"pypi.org", "files.pythonhosted.org", "test.pypi.org", "upload.pypi.org"}},
        {"go", {"proxy.golang.org", "sum.golang.org", "pkg.go.dev"}},
        {"rust", {"crates.io", "index.crates.io", "static.crates.io", "sh.rustup.rs", "static.rust-lang.org"}},
        {"ruby", {"rubygems.org", "index.rubygems.org", "cache.ruby-lang.org"}},
        {"java", {"repo.maven.apache.org", "repo1.maven.org"}},
        {"docker", {"registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com", "quay.io",
                    "cdn01.quay.io", "ghcr.io", "pkg-containers.githubusercontent.com"}},
        {"ubuntu", {"security.ubuntu.com", "archive.ubuntu.com", "us.archive.ubuntu.com"}},
        {"openai", {"api.openai.com", "chatgpt.com"}},
        {"anthropic", {"api.anthropic.com", "claude.ai"}},
        {"homebrew", {"formulae.brew.sh"}},
        {"foundry", {"foundry.paradigm.xyz"}},
        {"misc", {"mise.run", "tuf-repo-cdn.sigstore.dev", "www.example.com"}},
    };
    for (const auto& [name, hosts] : expected) {
        const group* g = find(name);
        ASSERT_NE(g, nullptr) << name;
        for (const char* host : hosts) {
            bool matched = false;
            for (const auto& d : g->domains) matched = matched || core::match_host_glob(d.value, host);
            EXPECT_TRUE(matched) << name << " does not admit " << host;
        }
    }
    EXPECT_EQ(all().size(), std::size(expected));
}

// Registry hosts are written as domain globs, so mirrors and CDNs of the same registry are covered.
TEST(AllowlistGroups, RegistriesAreGlobs) {
    auto has = [](const char* group, const char* value) {
        for (const auto& d : find(group)->domains)
            if (d.value == value) return true;
        return false;
    };
    EXPECT_TRUE(has("node", "*.npmjs.org"));
    EXPECT_TRUE(has("pypi", "*.pypi.org"));
    EXPECT_TRUE(has("rust", "*.crates.io"));
    EXPECT_TRUE(has("ruby", "*.rubygems.org"));
    EXPECT_TRUE(has("go", "*.golang.org"));
}

TEST(AllowlistGroups, GitHubSshRanges) {
    const group* g = find("github");
    ASSERT_NE(g, nullptr);
    std::set<std::string> cidrs;
    for (const auto& c : g->cidrs) cidrs.insert(c.value);
    EXPECT_TRUE(cidrs.count("140.82.112.0/20"));
    EXPECT_TRUE(cidrs.count("192.30.252.0/22"));
    EXPECT_TRUE(cidrs.count("2606:50c0::/32"));
}

// Every entry of every file carries its review note, and every data file is a group.
TEST(AllowlistGroups, EveryEntrySaysWhatUsesIt) {
    EXPECT_EQ(embedded_files().size(), all().size());
    for (const auto& g : all()) {
        EXPECT_FALSE(g.description.empty()) << g.name;
        for (const auto& e : g.domains) EXPECT_FALSE(e.used_by.empty()) << g.name << " " << e.value;
        for (const auto& e : g.cidrs) EXPECT_FALSE(e.used_by.empty()) << g.name << " " << e.value;
    }
}

TEST(AllowlistGroups, NamesAreCaseInsensitive) {
    EXPECT_EQ(find("PyPI"), find("pypi"));
    EXPECT_EQ(find("nope"), nullptr);
    auto r = lookup("nope");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "unknown allowlist group \"nope\" (known groups: " + known_names() + ")");
}

TEST(AllowlistGroups, ParseRejectsBrokenFiles) {
    EXPECT_FALSE(parse_group("x", "domains:\n  - a.com\n"));  // no comment
    EXPECT_FALSE(parse_group("x", "domains:\n  - \"[\"  # bad glob\n"));
    EXPECT_FALSE(parse_group("x", "cidrs:\n  - 10.0.0.0  # not a cidr\n"));
    EXPECT_FALSE(parse_group("x", "hosts:\n  - a.com  # unknown key\n"));
    EXPECT_FALSE(parse_group("x", "description: empty\n"));
    auto g = parse_group("X", "description: d\ndomains:\n  - \"*.a.com\"   # the a tool\n  - b.com # b\n");
    ASSERT_TRUE(g) << g.message();
    EXPECT_EQ(g->name, "x");
    ASSERT_EQ(g->domains.size(), 2u);
    EXPECT_EQ(g->domains[0].used_by, "the a tool");
    EXPECT_EQ(g->domains[1].value, "b.com");
    EXPECT_EQ(g->domains[1].used_by, "b");
}

}  // namespace
}  // namespace iron::allowlist_groups
