#include "core/headers.hpp"

#include <gtest/gtest.h>

namespace iron::core {
namespace {

TEST(Headers, Iequals) {
    EXPECT_TRUE(iequals("Content-Type", "content-type"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("Content-Type", "Content-Typ"));
    EXPECT_FALSE(iequals("a", "b"));
}

TEST(Headers, AddGetContains) {
    header_list h;
    EXPECT_TRUE(h.empty());
    h.add("X-A", "1");
    h.add("x-a", "2");
    h.add("Host", "example.com");
    EXPECT_EQ(h.size(), 3u);
    EXPECT_EQ(h.get("X-A").value_or(""), "1");  // first value
    EXPECT_TRUE(h.contains("HOST"));
    EXPECT_FALSE(h.contains("Missing"));
    EXPECT_FALSE(h.get("Missing").has_value());
}

TEST(Headers, SetReplacesAllKeepsPosition) {
    header_list h;
    h.add("A", "1");
    h.add("authorization", "old1");
    h.add("B", "2");
    h.add("AUTHORIZATION", "old2");
    h.set("Authorization", "new");
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h.entries()[1].name, "Authorization");
    EXPECT_EQ(h.entries()[1].value, "new");
    EXPECT_EQ(h.entries()[2].name, "B");
    h.set("C", "3");  // absent => appended
    EXPECT_EQ(h.entries().back().name, "C");
}

TEST(Headers, Erase) {
    header_list h;
    h.add("A", "1");
    h.add("a", "2");
    h.add("B", "3");
    h.erase("A");
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h.entries()[0].name, "B");
    h.erase("nothing");
    EXPECT_EQ(h.size(), 1u);
}

}  // namespace
}  // namespace iron::core
