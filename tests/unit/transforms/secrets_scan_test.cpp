// Byte-level helpers of the secrets transform: base64, escaping, in-place query/path rewriting.
#include "transforms/secrets_scan.hpp"

#include <gtest/gtest.h>

namespace iron::transforms::scan {
namespace {

TEST(SecretsScan, Base64RoundTripAndStrictness) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
    EXPECT_EQ(*base64_decode("dXNlcjpwYXNz"), "user:pass");
    EXPECT_EQ(*base64_decode("Zg=="), "f");
    EXPECT_EQ(*base64_decode(""), "");
    EXPECT_FALSE(base64_decode("Zg"));      // padding required
    EXPECT_FALSE(base64_decode("Zm9v!"));   // bad length / char
    EXPECT_FALSE(base64_decode("Z=9v"));    // '=' inside
    EXPECT_FALSE(base64_decode("dXNl cjpw")); 
}

TEST(SecretsScan, ReplaceAllAndEscapes) {
    EXPECT_EQ(replace_all("a-tok-b-tok", "tok", "X"), "a-X-b-X");
    EXPECT_EQ(replace_all("toktok", "tok", "tok!"), "tok!tok!");  // no re-scan of replacements
    EXPECT_EQ(query_escape("a b/c?d=e&f+g~h"), "a%20b%2Fc%3Fd%3De%26f%2Bg~h");
    EXPECT_EQ(path_escape("a b/c?d%e:f@g"), "a%20b/c%3Fd%25e:f@g");
    EXPECT_EQ(percent_decode("a%20b+c%zz%4", true), "a b c%zz%4");
    EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

TEST(SecretsScan, SwapEncodedMapsDecodedHitsToRawSpans) {
    std::string raw = "x%74ok+tok%2Fy";  // decoded: "xtok tok/y"
    std::string enc = "R%20";
    EXPECT_EQ(swap_encoded(raw, "tok", nullptr, true), 2u);
    EXPECT_EQ(raw, "x%74ok+tok%2Fy");  // search only
    EXPECT_EQ(swap_encoded(raw, "tok", &enc, true), 2u);
    EXPECT_EQ(raw, "xR%20+R%20%2Fy");
    std::string spanning = "t%6F%6B";  // the whole token encoded
    EXPECT_EQ(swap_encoded(spanning, "tok", &enc, false), 1u);
    EXPECT_EQ(spanning, "R%20");
}

TEST(SecretsScan, QueryKeysAndSearchOnly) {
    std::string q = "a=tok&b%5B%5D=xtokx&tok=no&c";
    std::string secret = "S";
    auto keys = swap_in_query(q, "tok", nullptr);
    EXPECT_EQ(keys, (std::vector<std::string>{"a", "b[]"}));
    EXPECT_EQ(q, "a=tok&b%5B%5D=xtokx&tok=no&c");  // keys are never scanned, nothing changed
    keys = swap_in_query(q, "tok", &secret);
    EXPECT_EQ(q, "a=S&b%5B%5D=xSx&tok=no&c");
}

TEST(SecretsScan, SetQueryParam) {
    std::string q;
    set_query_param(q, "k", "v w");
    EXPECT_EQ(q, "k=v%20w");
    q = "a=1&k=old&b=2&k=dup";
    set_query_param(q, "k", "new");
    EXPECT_EQ(q, "a=1&k=new&b=2");
    q = "a=1&&b";
    set_query_param(q, "c", "3");
    EXPECT_EQ(q, "a=1&&b&c=3");
    q = "%6B=enc";  // key matched after decoding; the raw key spelling is kept
    set_query_param(q, "k", "x");
    EXPECT_EQ(q, "%6B=x");
}

TEST(SecretsScan, HeaderValueRules) {
    std::string secret = "REAL";
    std::string v = "Bearer tok";
    EXPECT_TRUE(swap_in_header_value(false, v, "tok", &secret));
    EXPECT_EQ(v, "Bearer REAL");
    std::string basic = "Basic " + base64_encode("me:tok");
    EXPECT_TRUE(swap_in_header_value(true, basic, "tok", &secret));
    EXPECT_EQ(basic, "Basic " + base64_encode("me:REAL"));
    std::string basic_lower = "basic " + base64_encode("me:tok");  // "Basic " prefix is exact
    EXPECT_FALSE(swap_in_header_value(true, basic_lower, "tok", &secret));
    EXPECT_TRUE(has_header_breaking_bytes("a\nb"));
    EXPECT_TRUE(has_header_breaking_bytes(std::string("a\0b", 3)));
    EXPECT_FALSE(has_header_breaking_bytes("a b"));
}

}  // namespace
}  // namespace iron::transforms::scan
