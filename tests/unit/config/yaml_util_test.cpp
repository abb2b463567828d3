// Strict YAML helpers and Go duration parsing/formatting.
#include "config/yaml_util.hpp"

#include <gtest/gtest.h>

#include "config/config.hpp"

namespace iron::config {
namespace {

using std::chrono::nanoseconds;

const yaml_ctx k_ctx{"f.yaml", "sec"};

TEST(YamlCtx, ChildAndIndexBuildPaths) {
    yaml_ctx root{"f.yaml", ""};
    EXPECT_EQ(root.child("transforms").path, "transforms");
    EXPECT_EQ(root.child("transforms").index(2).child("config").child("domains").index(0).path,
              "transforms[2].config.domains[0]");
    EXPECT_EQ(root.child("a").file, "f.yaml");
}

TEST(YamlCtx, FailUsesOneBasedMarkAndPath) {
    YAML::Node doc = YAML::Load("a:\n  b: [1, 2]\n");
    yaml_ctx c{"f.yaml", "a.b"};
    EXPECT_EQ(c.fail(doc["a"]["b"], "boom").message, "f.yaml:2:6: a.b: boom");
    EXPECT_EQ(c.where(doc["a"]["b"]), "f.yaml:2:6");
    yaml_ctx top{"f.yaml", ""};
    EXPECT_EQ(top.fail(doc, "x").message, "f.yaml:1:1: x");
}

TEST(YamlCtx, FailWithoutPositionOmitsLineAndColumn) {
    const YAML::Node doc = YAML::Load("a: 1\n");
    YAML::Node missing = doc["nope"];
    EXPECT_EQ(k_ctx.fail(missing, "is required").message, "f.yaml: sec: is required");
}

TEST(ExpectMap, AcceptsKnownKeys) {
    YAML::Node doc = YAML::Load("a: 1\nb: 2\n");
    EXPECT_TRUE(expect_map(doc, k_ctx, {"a", "b", "c"}));
}

TEST(ExpectMap, UnknownKeyListsAllowed) {
    YAML::Node doc = YAML::Load("a: 1\n  \nfoo: 2\n");
    auto r = expect_map(doc, k_ctx, {"a", "b"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "f.yaml:3:1: sec: unknown key \"foo\" (allowed: a, b)");
}

TEST(ExpectMap, DuplicateKeyReportsSecond) {
    YAML::Node doc = YAML::Load("a: 1\nb: 2\na: 3\n");
    auto r = expect_map(doc, k_ctx, {"a", "b"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "f.yaml:3:1: sec: duplicate key \"a\" (first at line 1)");
}

TEST(ExpectMap, RejectsNonMaps) {
    EXPECT_NE(expect_map(YAML::Load("[1]"), k_ctx, {"a"}).message().find("expected a map"), std::string::npos);
    EXPECT_NE(expect_map(YAML::Load("x"), k_ctx, {"a"}).message().find("expected a map"), std::string::npos);
}

TEST(RejectDuplicateKeys, NestedInsideLists) {
    YAML::Node doc = YAML::Load("t:\n  - name: x\n    config:\n      k: 1\n      k: 2\n");
    auto r = reject_duplicate_keys(doc, "f.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "f.yaml:5:7: t[0].config: duplicate key \"k\" (first at line 4)");
}

TEST(RejectDuplicateKeys, CleanDocumentAndCyclicAliasTerminate) {
    EXPECT_TRUE(reject_duplicate_keys(YAML::Load("a: {b: 1, c: [1, {d: 2}]}\n"), "f.yaml"));
    EXPECT_TRUE(reject_duplicate_keys(YAML::Load("a: &x [*x, *x, {k: 1}]\n"), "f.yaml"));
}

TEST(GetString, ScalarsNullAndContainers) {
    YAML::Node doc = YAML::Load("s: hello\nn: 8080\nq: 'quoted'\nz:\nm: {a: 1}\n");
    EXPECT_EQ(*get_string(doc["s"], k_ctx), "hello");
    EXPECT_EQ(*get_string(doc["n"], k_ctx), "8080");
    EXPECT_EQ(*get_string(doc["q"], k_ctx), "quoted");
    EXPECT_EQ(*get_string(doc["z"], k_ctx), "");
    auto bad = get_string(doc["m"], k_ctx);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message(), "f.yaml:5:4: sec: expected a string, got a map");
}

TEST(GetBool, GoAcceptedSpellings) {
    YAML::Node doc = YAML::Load("a: true\nb: False\nc: yes\nd: OFF\ne: 'true'\nf: 1\ng: maybe\n");
    EXPECT_TRUE(*get_bool(doc["a"], k_ctx));
    EXPECT_FALSE(*get_bool(doc["b"], k_ctx));
    EXPECT_TRUE(*get_bool(doc["c"], k_ctx));
    EXPECT_FALSE(*get_bool(doc["d"], k_ctx));
    for (const char* k : {"e", "f", "g"}) {
        auto r = get_bool(doc[k], k_ctx);
        ASSERT_FALSE(r) << k;
        EXPECT_NE(r.message().find("expected a boolean"), std::string::npos) << r.message();
    }
}

TEST(GetInt, FormsAndErrors) {
    YAML::Node doc = YAML::Load(
        "a: 42\nb: -7\nc: 1_000_000\nd: 0x10\ne: 0o17\nf: '5'\ng: 1.5\nh: 0100\ni: 9223372036854775808\n"
        "j: -9223372036854775808\nk: abc\n");
    EXPECT_EQ(*get_int(doc["a"], k_ctx), 42);
    EXPECT_EQ(*get_int(doc["b"], k_ctx), -7);
    EXPECT_EQ(*get_int(doc["c"], k_ctx), 1000000);
    EXPECT_EQ(*get_int(doc["d"], k_ctx), 16);
    EXPECT_EQ(*get_int(doc["e"], k_ctx), 15);
    EXPECT_EQ(*get_int(doc["j"], k_ctx), INT64_MIN);
    for (const char* k : {"f", "g", "h", "i", "k"}) {
        auto r = get_int(doc[k], k_ctx);
        ASSERT_FALSE(r) << k;
        EXPECT_NE(r.message().find("expected an integer"), std::string::npos) << r.message();
    }
    EXPECT_EQ(get_int(doc["f"], k_ctx).message(), "f.yaml:6:4: sec: expected an integer, got \"5\"");
}

TEST(GetStringList, ListNullAndErrors) {
    YAML::Node doc = YAML::Load("a: [x, y]\nb:\nc: x\nd: [x, [y]]\n");
    EXPECT_EQ(*get_string_list(doc["a"], k_ctx), (std::vector<std::string>{"x", "y"}));
    EXPECT_TRUE(get_string_list(doc["b"], k_ctx)->empty());
    EXPECT_EQ(get_string_list(doc["c"], k_ctx).message(), "f.yaml:3:4: sec: expected a list, got \"x\"");
    EXPECT_EQ(get_string_list(doc["d"], k_ctx).message(), "f.yaml:4:8: sec[1]: expected a string, got a list");
}

TEST(GetDuration, StringsOnly) {
    YAML::Node doc = YAML::Load("a: 30s\nb: '1.5h'\nc: 30\nd: '0'\ne: ''\nf: 5x\ng:\nh: -2m\n");
    EXPECT_EQ(*get_duration(doc["a"], k_ctx), std::chrono::seconds(30));
    EXPECT_EQ(*get_duration(doc["b"], k_ctx), std::chrono::minutes(90));
    auto c = get_duration(doc["c"], k_ctx);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.message(), "f.yaml:3:4: sec: expected a duration string like \"30s\", got 30");
    EXPECT_EQ(*get_duration(doc["d"], k_ctx), nanoseconds(0));
    EXPECT_EQ(*get_duration(doc["e"], k_ctx), nanoseconds(0));
    EXPECT_EQ(get_duration(doc["f"], k_ctx).message(), "f.yaml:6:4: sec: time: unknown unit \"x\" in duration \"5x\"");
    EXPECT_EQ(*get_duration(doc["g"], k_ctx), nanoseconds(0));
    EXPECT_EQ(*get_duration(doc["h"], k_ctx), -std::chrono::minutes(2));
}

struct duration_case {
    const char* text;
    std::int64_t ns;
};

TEST(ParseGoDuration, ValidTable) {
    const duration_case cases[] = {
        {"0", 0},
        {"-0", 0},
        {"+0", 0},
        {"5s", 5'000'000'000},
        {"30s", 30'000'000'000},
        {"1478s", 1478'000'000'000},
        {"-5s", -5'000'000'000},
        {"+5s", 5'000'000'000},
        {"-0s", 0},
        {"5.0s", 5'000'000'000},
        {"5.6s", 5'600'000'000},
        {"5.s", 5'000'000'000},
        {".5s", 500'000'000},
        {"1.004s", 1'004'000'000},
        {"100.00100s", 100'001'000'000},
        {"10ns", 10},
        {"11us", 11'000},
        {"12\xC2\xB5s", 12'000},
        {"12\xCE\xBCs", 12'000},
        {"13ms", 13'000'000},
        {"14s", 14'000'000'000},
        {"15m", 900'000'000'000},
        {"16h", 57'600'000'000'000},
        {"3h30m", 12'600'000'000'000},
        {"2h45m", 9'900'000'000'000},
        {"10.5s4m", 250'500'000'000},
        {"-2m3.4s", -123'400'000'000},
        {"1h2m3s4ms5us6ns", 3'723'004'005'006},
        {"39h9m14.425s", 140'954'425'000'000},
        {"52763797000ns", 52'763'797'000},
        {"0.3333333333333333333h", 1'200'000'000'000},
        {"9007199254740993ns", 9'007'199'254'740'993},
        {"9223372036854775807ns", INT64_MAX},
        {"9223372036854775.807us", INT64_MAX},
        {"-9223372036854775808ns", INT64_MIN},
        {"0.100000000000000000000h", 360'000'000'000},
        {"1.5h", 5'400'000'000'000},
        {"500ms", 500'000'000},
    };
    for (const auto& c : cases) {
        auto d = parse_go_duration(c.text);
        ASSERT_TRUE(d) << c.text << ": " << d.message();
        EXPECT_EQ(d->count(), c.ns) << c.text;
    }
}

TEST(ParseGoDuration, InvalidTable) {
    const std::pair<const char*, const char*> cases[] = {
        {"", "time: invalid duration \"\""},
        {"3", "time: missing unit in duration \"3\""},
        {"-", "time: invalid duration \"-\""},
        {"s", "time: invalid duration \"s\""},
        {".", "time: invalid duration \".\""},
        {"-.", "time: invalid duration \"-.\""},
        {".s", "time: invalid duration \".s\""},
        {"+.s", "time: invalid duration \"+.s\""},
        {"1d", "time: unknown unit \"d\" in duration \"1d\""},
        {"30 s", "time: unknown unit \" s\" in duration \"30 s\""},
        {"5sec", "time: unknown unit \"sec\" in duration \"5sec\""},
        {"9223372036854775808ns", "time: invalid duration \"9223372036854775808ns\""},
        {"9223372036854775.808us", "time: invalid duration \"9223372036854775.808us\""},
        {"-9223372036854775809ns", "time: invalid duration \"-9223372036854775809ns\""},
        {"3000000h", "time: invalid duration \"3000000h\""},
    };
    for (const auto& [text, msg] : cases) {
        auto d = parse_go_duration(text);
        ASSERT_FALSE(d) << text;
        EXPECT_EQ(d.message(), msg) << text;
    }
}

TEST(FormatGoDuration, MatchesGoStringer) {
    const std::pair<std::int64_t, const char*> cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {1100, "1.1\xC2\xB5s"},
        {2'200'000, "2.2ms"},
        {3'300'000'000, "3.3s"},
        {-5'000'000'000, "-5s"},
        {4 * 60'000'000'000LL + 5'000'000'000, "4m5s"},
        {4 * 60'000'000'000LL + 5'001'000'000, "4m5.001s"},
        {5 * 3'600'000'000'000LL + 6 * 60'000'000'000LL + 7'001'000'000, "5h6m7.001s"},
        {8 * 60'000'000'000LL + 1, "8m0.000000001s"},
        {5'400'000'000'000, "1h30m0s"},
        {INT64_MAX, "2562047h47m16.854775807s"},
        {INT64_MIN, "-2562047h47m16.854775808s"},
    };
    for (const auto& [ns, text] : cases) EXPECT_EQ(format_go_duration(nanoseconds(ns)), text) << ns;
}

TEST(GoQuote, EscapesLikeStrconvQuote) {
    EXPECT_EQ(go_quote("abc"), "\"abc\"");
    EXPECT_EQ(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(go_quote("x\ny\t\x01"), "\"x\\ny\\t\\x01\"");
}

TEST(GoStrconv, ParseBool) {
    for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) EXPECT_TRUE(*go_parse_bool(t)) << t;
    for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) EXPECT_FALSE(*go_parse_bool(f)) << f;
    EXPECT_EQ(go_parse_bool("yes").message(), "strconv.ParseBool: parsing \"yes\": invalid syntax");
    EXPECT_EQ(go_parse_bool("tRUE").message(), "strconv.ParseBool: parsing \"tRUE\": invalid syntax");
}

TEST(GoStrconv, ParseIntAndAtoi) {
    EXPECT_EQ(*go_parse_int("+42", "ParseInt", INT64_MIN, INT64_MAX), 42);
    EXPECT_EQ(*go_parse_int("-9223372036854775808", "ParseInt", INT64_MIN, INT64_MAX), INT64_MIN);
    EXPECT_EQ(go_parse_int("9223372036854775808", "ParseInt", INT64_MIN, INT64_MAX).message(),
              "strconv.ParseInt: parsing \"9223372036854775808\": value out of range");
    EXPECT_EQ(go_parse_int("", "Atoi", INT32_MIN, INT32_MAX).message(), "strconv.Atoi: parsing \"\": invalid syntax");
    EXPECT_EQ(go_parse_int("-", "Atoi", INT32_MIN, INT32_MAX).message(), "strconv.Atoi: parsing \"-\": invalid syntax");
    EXPECT_EQ(go_parse_int(" 1", "Atoi", INT32_MIN, INT32_MAX).message(), "strconv.Atoi: parsing \" 1\": invalid syntax");
    EXPECT_EQ(go_parse_int("2147483648", "Atoi", INT32_MIN, INT32_MAX).message(),
              "strconv.Atoi: parsing \"2147483648\": value out of range");
    EXPECT_EQ(*go_parse_int("-2147483648", "Atoi", INT32_MIN, INT32_MAX), INT32_MIN);
}

}  // namespace
}  // namespace iron::config
