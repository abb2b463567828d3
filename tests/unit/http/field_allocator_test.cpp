#include "http/field_allocator.hpp"

#include <string>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "http/messages.hpp"

namespace bhttp = boost::beast::http;
using namespace iron::http;

namespace {

TEST(FieldAllocator, FieldsBehaveAsUsual) {
    proxy_fields f;
    f.insert("Server", "nginx");
    f.insert(bhttp::field::content_length, "1024");
    f.insert("X-Long", std::string(2000, 'v'));  // larger than any recycled class
    EXPECT_EQ(f["server"], "nginx");
    EXPECT_EQ(f[bhttp::field::content_length], "1024");
    EXPECT_EQ(f["X-Long"].size(), 2000u);
    f.erase("Server");
    EXPECT_EQ(std::distance(f.begin(), f.end()), 2);
}

TEST(FieldAllocator, BlocksOfAFinishedMessageServeTheNext) {
    { proxy_fields warm; warm.insert("A", "1"); }
    const auto idle = field_blocks_on_this_thread();
    {
        proxy_fields f;
        for (int i = 0; i < 10; ++i) f.insert("X-Field-" + std::to_string(i), "value");
        EXPECT_LE(field_blocks_on_this_thread(), idle);  // taken from the lists, not added
    }
    const auto after_first = field_blocks_on_this_thread();
    EXPECT_GE(after_first, 10u);  // every field's block came back
    {
        proxy_fields f;
        for (int i = 0; i < 10; ++i) f.insert("X-Field-" + std::to_string(i), "value");
        EXPECT_EQ(field_blocks_on_this_thread(), after_first - 10);  // reused, none new
    }
    EXPECT_EQ(field_blocks_on_this_thread(), after_first);
}

TEST(FieldAllocator, CacheIsBounded) {
    {
        proxy_fields f;
        for (int i = 0; i < 5000; ++i) f.insert("X-Many", "v");
    }
    EXPECT_LE(field_blocks_on_this_thread(), 8u * 128u);
}

TEST(FieldAllocator, ParserAndMessageFunctionsWork) {
    bhttp::request_parser<bhttp::string_body, field_allocator<char>> p;
    const std::string wire = "GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                             "Content-Length: 2\r\n\r\nhi";
    boost::system::error_code ec;
    p.eager(true);  // header and body in one put
    p.put(boost::asio::buffer(wire), ec);
    ASSERT_FALSE(ec);
    ASSERT_TRUE(p.is_done());
    auto& req = p.get();
    auto list = to_header_list(req.base());
    ASSERT_EQ(list.size(), 4u);
    list.set("X-Added", "v");
    replace_fields(req.base(), list);
    EXPECT_EQ(req["X-Added"], "v");
    EXPECT_FALSE(remove_hop_by_hop(req.base()));
    EXPECT_EQ(req.count("X-Hop"), 0u);
    EXPECT_EQ(req.count(bhttp::field::connection), 0u);
    EXPECT_FALSE(is_websocket_upgrade(req.base()));
    EXPECT_EQ(req.body(), "hi");
}

}  // namespace
