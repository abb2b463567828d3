#include "core/port.hpp"

#include <gtest/gtest.h>

namespace iron::core {
namespace {

TEST(ParsePort, DecimalDigitsFromOneTo65535) {
    EXPECT_EQ(parse_port("1"), 1);
    EXPECT_EQ(parse_port("80"), 80);
    EXPECT_EQ(parse_port("443"), 443);
    EXPECT_EQ(parse_port("65535"), 65535);
    EXPECT_EQ(parse_port("0443"), 443);  // leading zeros: a number like any other
    EXPECT_EQ(parse_port("000000000000000000000000008080"), 8080);
}

TEST(ParsePort, AnythingElseIsNoPort) {
    for (const char* bad : {"", "65536", "70000", "99999999999999999999999", "+443", "-1", " 80", "80 ", "8o",
                            "0x50", "1e3", "4.3", "\xd9\xa3"}) {
        EXPECT_FALSE(parse_port(bad)) << bad;
        EXPECT_FALSE(parse_port(bad, port_zero::allowed)) << bad;
    }
}

TEST(ParsePort, ZeroOnlyWhereTheCallerAllowsIt) {
    EXPECT_FALSE(parse_port("0"));
    EXPECT_FALSE(parse_port("00"));
    EXPECT_EQ(parse_port("0", port_zero::allowed), 0);
    EXPECT_EQ(parse_port("000", port_zero::allowed), 0);
}

}  // namespace
}  // namespace iron::core
