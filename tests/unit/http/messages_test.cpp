#include "http/messages.hpp"

#include <gtest/gtest.h>

namespace bhttp = boost::beast::http;
using namespace iron::http;

TEST(RequestTarget, OriginForm) {
    auto t = parse_request_target("/a/b?x=1&y=%20");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->scheme, "");
    EXPECT_EQ(t->path, "/a/b");
    EXPECT_EQ(t->query, "x=1&y=%20");
    EXPECT_EQ(t->origin_form(), "/a/b?x=1&y=%20");
}

TEST(RequestTarget, AbsoluteForm) {
    auto t = parse_request_target("HTTP://Example.com:8080/p%2Fq?z");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->scheme, "http");
    EXPECT_EQ(t->authority, "Example.com:8080");
    EXPECT_EQ(t->path, "/p%2Fq");
    EXPECT_EQ(t->query, "z");
    auto bare = parse_request_target("https://h.test");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->path, "/");
}

TEST(RequestTarget, RejectsOtherForms) {
    EXPECT_FALSE(parse_request_target("*"));
    EXPECT_FALSE(parse_request_target("example.com:443"));
    EXPECT_FALSE(parse_request_target(""));
    EXPECT_FALSE(parse_request_target("http://user@host/"));  // userinfo is a phishing vector
    EXPECT_FALSE(parse_request_target("http:///path"));
}

TEST(DecodePath, DecodesAndRejectsBadEscapes) {
    EXPECT_EQ(decode_path("/a%20b/%2e%2E"), "/a b/..");
    EXPECT_FALSE(decode_path("/a%2"));
    EXPECT_FALSE(decode_path("/a%zz"));
    EXPECT_FALSE(decode_path("/a%00b"));
    EXPECT_FALSE(decode_path("/a%"));
}

TEST(DotSegments, Detected) {
    EXPECT_TRUE(has_dot_segment("/a/../b"));
    EXPECT_TRUE(has_dot_segment("/a/./b"));
    EXPECT_TRUE(has_dot_segment("/.."));
    EXPECT_TRUE(has_dot_segment("/a/.."));
    EXPECT_FALSE(has_dot_segment("/a/..b/c."));
    EXPECT_FALSE(has_dot_segment("/"));
    EXPECT_FALSE(has_dot_segment("/.well-known/x"));
}

TEST(CheckTargetAndHost, AcceptsAndDecodes) {
    std::optional<std::string> decoded;
    EXPECT_FALSE(check_target_and_host("allowed.test:8443", parse_request_target("/a%20b?q"), decoded));
    EXPECT_EQ(decoded, "/a b");
    EXPECT_FALSE(check_target_and_host("[::1]", parse_request_target("/"), decoded));
}

TEST(CheckTargetAndHost, RejectsInOrder) {
    std::optional<std::string> decoded;
    EXPECT_EQ(check_target_and_host("h", parse_request_target("*"), decoded), "malformed request target");
    EXPECT_EQ(check_target_and_host("", parse_request_target("/"), decoded), "missing Host header");
    EXPECT_EQ(check_target_and_host("h", parse_request_target("/%zz"), decoded), "malformed path");
    EXPECT_FALSE(decoded);
    EXPECT_EQ(check_target_and_host("h", parse_request_target("/a/%2e%2e/b"), decoded), "path contains dot segments");
    EXPECT_EQ(decoded, "/a/../b");  // decoded before the dot check, so the rejection is audited with it
    EXPECT_EQ(check_target_and_host(":80", parse_request_target("/"), decoded), "missing Host header");
    for (const char* host : {"h:0", "h:65536", "h:+80", "h:8x"})
        EXPECT_EQ(check_target_and_host(host, parse_request_target("/"), decoded), "invalid port in Host header")
            << host;
}

TEST(HopByHop, RemovesStandardAndConnectionNamedHeaders) {
    bhttp::fields f;
    f.insert("Connection", "keep-alive, X-Secret-Hop");
    f.insert("Keep-Alive", "timeout=5");
    f.insert("Proxy-Authorization", "Basic Zm9vOmJhcg==");
    f.insert("Proxy-Connection", "keep-alive");
    f.insert("TE", "trailers, deflate");
    f.insert("Upgrade", "h2c");
    f.insert("Trailer", "X-T");
    f.insert("X-Secret-Hop", "1");
    f.insert("Authorization", "Bearer keep-me");
    f.insert("Accept", "*/*");
    bool trailers = remove_hop_by_hop(f);
    EXPECT_TRUE(trailers);
    EXPECT_EQ(f.count("Connection"), 0u);
    EXPECT_EQ(f.count("Keep-Alive"), 0u);
    EXPECT_EQ(f.count("Proxy-Authorization"), 0u);
    EXPECT_EQ(f.count("Proxy-Connection"), 0u);
    EXPECT_EQ(f.count("TE"), 0u);
    EXPECT_EQ(f.count("Upgrade"), 0u);
    EXPECT_EQ(f.count("Trailer"), 0u);
    EXPECT_EQ(f.count("X-Secret-Hop"), 0u);
    EXPECT_EQ(f["Authorization"], "Bearer keep-me");
    EXPECT_EQ(f["Accept"], "*/*");
}

TEST(HopByHop, NamesListedInConnectionGoWhereverTheySitAndKeepTheRestInOrder) {
    bhttp::fields f;
    f.insert("x-before", "1");  // named in Connection, sits before it
    f.insert("Accept", "*/*");
    f.insert("Connection", " X-BEFORE ,x-after,,");
    f.insert("Via", "1.1 a");
    f.insert("X-After", "2");
    f.insert("te", "TRAILERS");
    f.insert("Accept", "text/html");
    EXPECT_TRUE(remove_hop_by_hop(f));
    std::vector<std::string> left;
    for (const auto& e : f) left.push_back(std::string(e.name_string()) + "=" + std::string(e.value()));
    // (Beast files a repeated name right after its first occurrence.)
    EXPECT_EQ(left, (std::vector<std::string>{"Accept=*/*", "Accept=text/html", "Via=1.1 a"}));
}

TEST(HopByHop, NothingToRemoveLeavesFieldsAlone) {
    proxy_fields f;
    f.insert("Host", "a.test");
    f.insert("X-Connection", "close");  // not Connection
    EXPECT_FALSE(remove_hop_by_hop(f));
    EXPECT_EQ(std::distance(f.begin(), f.end()), 2);
}

TEST(HopByHop, NoTrailersWithoutTe) {
    bhttp::fields f;
    f.insert("Accept", "*/*");
    EXPECT_FALSE(remove_hop_by_hop(f));
}

TEST(Fields, RoundTripKeepsOrderCasingAndFraming) {
    bhttp::fields f;
    f.insert("x-lower", "1");
    f.insert("Content-Length", "5");
    f.insert("X-Multi", "a");
    f.insert("X-Multi", "b");
    auto list = to_header_list(f);
    ASSERT_EQ(list.size(), 4u);
    EXPECT_EQ(list.entries()[0].name, "x-lower");
    list.set("X-Added", "v");
    replace_fields(f, list);
    EXPECT_EQ(f["Content-Length"], "5");
    EXPECT_EQ(f.count("X-Multi"), 2u);
    EXPECT_EQ(f["X-Added"], "v");
}

std::vector<std::string> field_lines(const bhttp::fields& f) {
    std::vector<std::string> out;
    for (const auto& e : f) out.push_back(std::string(e.name_string()) + ": " + std::string(e.value()));
    return out;
}

TEST(Fields, UnchangedListLeavesFieldsAsTheyAre) {
    // The common response: Content-Length among the other fields and no transform touching them.
    bhttp::fields f;
    f.insert("Server", "nginx");
    f.insert("Content-Length", "1024");
    f.insert("ETag", "\"abc\"");
    const auto before = field_lines(f);
    replace_fields(f, to_header_list(f));
    EXPECT_EQ(field_lines(f), before);
}

TEST(Fields, ChangedListMovesFramingToTheEndAndIgnoresItsFramingValues) {
    bhttp::fields f;
    f.insert("Server", "nginx");
    f.insert("Content-Length", "1024");
    f.insert("ETag", "\"abc\"");
    auto list = to_header_list(f);
    list.set("Content-Length", "1");  // framing stays Beast's
    list.erase("ETag");
    replace_fields(f, list);
    EXPECT_EQ(field_lines(f), (std::vector<std::string>{"Server: nginx", "Content-Length: 1024"}));
}
