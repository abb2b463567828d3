#include "core/percent.hpp"

#include <gtest/gtest.h>

namespace iron::core {

TEST(Percent, LenientDecodingKeepsWhatIsNotAnEscape) {
    EXPECT_EQ(percent_decode("a%20b%2fc%2F"), "a b/c/");
    EXPECT_EQ(percent_decode("100%"), "100%");
    EXPECT_EQ(percent_decode("%4"), "%4");
    EXPECT_EQ(percent_decode("%zz%41"), "%zzA");
    EXPECT_EQ(percent_decode("a+b"), "a+b");
    EXPECT_EQ(percent_decode("a+b", true), "a b");
    EXPECT_EQ(percent_decode("%00", false), std::string(1, '\0'));
}

TEST(Percent, StrictDecodingRefusesABrokenEscape) {
    EXPECT_EQ(percent_decode_strict("us%3Aer"), "us:er");
    EXPECT_EQ(percent_decode_strict("plain"), "plain");
    EXPECT_FALSE(percent_decode_strict("100%"));
    EXPECT_FALSE(percent_decode_strict("%4"));
    EXPECT_FALSE(percent_decode_strict("%g0"));
}

TEST(Percent, HexDigits) {
    EXPECT_EQ(hex_digit_value('0'), 0);
    EXPECT_EQ(hex_digit_value('a'), 10);
    EXPECT_EQ(hex_digit_value('F'), 15);
    EXPECT_EQ(hex_digit_value('g'), -1);
}

}  // namespace iron::core
