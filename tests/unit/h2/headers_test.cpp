#include "h2/headers.hpp"

#include <gtest/gtest.h>

namespace iron::h2 {
namespace {

namespace bhttp = boost::beast::http;

TEST(H2Headers, ConnectionSpecificFieldsAreRecognised) {
    for (const char* name : {"connection", "Keep-Alive", "proxy-connection", "transfer-encoding", "upgrade",
                             "proxy-authorization", "Proxy-Authenticate"})
        EXPECT_TRUE(is_connection_specific(name, "x")) << name;
    EXPECT_TRUE(is_connection_specific("te", "gzip"));
    EXPECT_FALSE(is_connection_specific("te", "trailers"));
    EXPECT_FALSE(is_connection_specific("TE", " trailers "));
    EXPECT_FALSE(is_connection_specific("content-type", "text/plain"));
    EXPECT_FALSE(is_connection_specific("connectionx", "1"));
}

TEST(H2Headers, PipelineSeesCanonicalNamesWithoutPseudoHeaders) {
    header_block in{{":method", "GET"}, {":path", "/"}, {"content-type", "a"}, {"x-api-key", "k"},
                    {"X-Already", "v"}, {"www-authenticate", "w"}};
    auto list = to_header_list(in);
    ASSERT_EQ(list.size(), 4u);
    EXPECT_EQ(list.entries()[0].name, "Content-Type");
    EXPECT_EQ(list.entries()[1].name, "X-Api-Key");
    EXPECT_EQ(list.entries()[2].name, "X-Already");
    EXPECT_EQ(list.entries()[3].name, "Www-Authenticate");
}

TEST(H2Headers, H2FieldsAreLowerCaseWithoutHostOrHopByHop) {
    core::header_list list;
    list.add("Content-Type", "a");
    list.add("Host", "example.com");
    list.add("Connection", "close");
    list.add("TE", "trailers");
    list.add("Transfer-Encoding", "chunked");
    header_block out{{":status", "200"}};
    append_h2_fields(list, out);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].name, ":status");
    EXPECT_EQ(out[1].name, "content-type");
    EXPECT_EQ(out[2].name, "te");
    EXPECT_EQ(out[2].value, "trailers");
}

TEST(H2Headers, H1FieldsJoinCookiesAndDropTe) {
    core::header_list list;
    list.add("Cookie", "a=1");
    list.add("Accept", "*/*");
    list.add("Cookie", "b=2");
    list.add("Te", "trailers");
    bhttp::fields out;
    set_h1_fields(list, out);
    EXPECT_EQ(out["Cookie"], "a=1; b=2");
    EXPECT_EQ(out["Accept"], "*/*");
    EXPECT_EQ(out.count("te"), 0u);
}

TEST(H2Headers, H1ResponseDropsFieldsNamedInConnection) {
    bhttp::fields in;
    in.insert("Connection", "keep-alive, X-Hop");
    in.insert("X-Hop", "1");
    in.insert("Keep-Alive", "timeout=5");
    in.insert("Transfer-Encoding", "chunked");
    in.insert("Content-Type", "text/plain");
    in.insert("Trailer", "x-checksum");
    header_block out;
    append_h1_response_fields(in, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].name, "content-type");
}

}  // namespace
}  // namespace iron::h2
