#include "core/host_glob.hpp"

#include <gtest/gtest.h>

namespace iron::core {
namespace {

struct match_case {
    const char* pattern;
    const char* name;
    bool match;
    bool valid;
};

// Go's path.Match test table (src/path/match_test.go), plus a few extras.
const match_case go_cases[] = {
    {"abc", "abc", true, true},
    {"*", "abc", true, true},
    {"*c", "abc", true, true},
    {"a*", "a", true, true},
    {"a*", "abc", true, true},
    {"a*", "ab/c", false, true},
    {"a*/b", "abc/b", true, true},
    {"a*/b", "a/c/b", false, true},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", true, true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true, true},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, true},
    {"a*b?c*x", "abxbbxdbxebxczzx", true, true},
    {"a*b?c*x", "abxbbxdbxebxczzy", false, true},
    {"ab[c]", "abc", true, true},
    {"ab[b-d]", "abc", true, true},
    {"ab[e-g]", "abc", false, true},
    {"ab[^c]", "abc", false, true},
    {"ab[^b-d]", "abc", false, true},
    {"ab[^e-g]", "abc", true, true},
    {"a\\*b", "a*b", true, true},
    {"a\\*b", "ab", false, true},
    {"a?b", "a\xe2\x98\xba" "b", true, true},
    {"a[^a]b", "a\xe2\x98\xba" "b", true, true},
    {"a???b", "a\xe2\x98\xba" "b", false, true},
    {"a[^a][^a][^a]b", "a\xe2\x98\xba" "b", false, true},
    {"[a-\xce\xb6]*", "\xce\xb1", true, true},
    {"*[a-\xce\xb6]", "A", false, true},
    {"a?b", "a/b", false, true},
    {"a*b", "a/b", false, true},
    {"[\\]a]", "]", true, true},
    {"[\\-]", "-", true, true},
    {"[x\\-]", "x", true, true},
    {"[x\\-]", "-", true, true},
    {"[x\\-]", "z", false, true},
    {"[\\-x]", "x", true, true},
    {"[\\-x]", "-", true, true},
    {"[\\-x]", "a", false, true},
    {"[]a]", "]", false, false},
    {"[-]", "-", false, false},
    {"[x-]", "x", false, false},
    {"[x-]", "-", false, false},
    {"[x-]", "z", false, false},
    {"[-x]", "x", false, false},
    {"[-x]", "-", false, false},
    {"[-x]", "a", false, false},
    {"\\", "a", false, false},
    {"[a-b-c]", "a", false, false},
    {"[", "a", false, false},
    {"[^", "a", false, false},
    {"[^bc", "a", false, false},
    {"a[", "a", false, false},
    {"a[", "ab", false, false},
    {"a[", "x", false, false},
    {"a/b[", "x", false, false},
    {"*x", "xxx", true, true},
    // '!' is not a negation in Go's path.Match: it is a literal class member.
    {"[!a]", "!", true, true},
    {"[!a]", "b", false, true},
    {"", "", true, true},
    {"", "a", false, true},
    {"*", "", true, true},
};

TEST(PathMatch, GoTable) {
    for (const auto& c : go_cases) {
        EXPECT_EQ(path_match(c.pattern, c.name), c.match) << "pattern=" << c.pattern << " name=" << c.name;
        EXPECT_EQ(valid_glob(c.pattern), c.valid) << "pattern=" << c.pattern;
    }
}

TEST(HostGlob, Table) {
    struct hc {
        const char* pattern;
        const char* host;
        bool match;
    };
    const hc cases[] = {
        {"*", "anything.example.com", true},
        {"*", "10.0.0.1", true},
        {"*", "", true},
        {"*.x.com", "x.com", true},
        {"*.x.com", "a.x.com", true},
        {"*.x.com", "a.b.c.x.com", true},
        {"*.x.com", "notx.com", false},
        {"*.x.com", "x.com.evil.org", false},
        {"*.x.com", "com", false},
        {"api.*.com", "api.x.com", true},
        {"api.*.com", "api.x.y.com", true},  // '*' crosses dots (Go path.Match)
        {"api.*.com", "web.x.com", false},
        {"example.com", "example.com", true},
        {"example.com", "a.example.com", false},
        {"10.0.0.*", "10.0.0.7", true},
        {"10.0.0.*", "10.0.1.7", false},
        {"10.0.0.?", "10.0.0.12", false},
        {"api[", "api[", false},  // malformed never matches
        {"a?c.com", "abc.com", true},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(match_host_glob(c.pattern, c.host), c.match) << c.pattern << " vs " << c.host;
    }
}

TEST(PathRule, Table) {
    struct pc {
        const char* pattern;
        const char* path;
        bool match;
    };
    const pc cases[] = {
        {"/v1/*", "/v1", true},
        {"/v1/*", "/v1/", true},
        {"/v1/*", "/v1/x/y", true},
        {"/v1/*", "/v1x", false},
        {"/v1/*", "/v2/x", false},
        {"/*", "/", true},
        {"/*", "", true},
        {"/*", "/a/b/c", true},
        {"/v1/*/models", "/v1/abc/models", true},
        {"/v1/*/models", "/v1/a/b/models", false},
        {"/exact", "/exact", true},
        {"/exact", "/exact/", false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(match_path_rule(c.pattern, c.path), c.match) << c.pattern << " vs " << c.path;
    }
}

TEST(NormalizeHost, LowerCaseAndTrailingDot) {
    EXPECT_EQ(normalize_host("API.Example.COM."), "api.example.com");
    EXPECT_EQ(normalize_host("a.b.."), "a.b.");  // only one dot is stripped
    EXPECT_EQ(normalize_host(""), "");
    EXPECT_EQ(normalize_host("."), "");
    EXPECT_EQ(normalize_host("\xC3\x84.com"), "\xC3\x84.com");  // non-ASCII untouched
}

TEST(SplitHostPort, Table) {
    struct sc {
        const char* in;
        const char* host;
        const char* port;
    };
    const sc cases[] = {
        {"a.b:443", "a.b", "443"}, {"a.b", "a.b", ""},     {"[::1]:443", "::1", "443"},
        {"[::1]", "::1", ""},      {"::1", "::1", ""},     {"2001:db8::1", "2001:db8::1", ""},
        {"1.2.3.4:80", "1.2.3.4", "80"}, {"", "", ""},     {"a.b:", "a.b", ""},
    };
    for (const auto& c : cases) {
        auto hp = split_host_port(c.in);
        EXPECT_EQ(hp.host, c.host) << c.in;
        EXPECT_EQ(hp.port, c.port) << c.in;
        EXPECT_EQ(strip_port(c.in), c.host) << c.in;
    }
}

}  // namespace
}  // namespace iron::core
