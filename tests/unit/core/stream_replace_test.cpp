// The streaming multi-pattern replacer: the same output whatever the piece boundaries, longest
// match first, overlaps fully covered, bounded hold-back.
#include "core/stream_replace.hpp"

#include <random>

#include <gtest/gtest.h>

namespace iron::core {
namespace {

using rules = std::vector<replacement_set::rule>;

std::shared_ptr<const replacement_set> make(rules r) { return std::make_shared<const replacement_set>(std::move(r)); }

// Feeds `pieces` one by one, then finishes.
std::string stream(const std::shared_ptr<const replacement_set>& set, const std::vector<std::string>& pieces,
                   std::size_t* count = nullptr) {
    stream_replacer r(set);
    std::string out;
    for (const auto& p : pieces) {
        r.feed(p, out);
        EXPECT_LT(r.held(), std::max<std::size_t>(set->max_from(), 1)) << "held back more than max_from - 1";
    }
    r.finish(out);
    EXPECT_EQ(r.held(), 0u);
    if (count) *count = r.replacements();
    return out;
}

// An independent, obviously-correct oracle for the contract in stream_replace.hpp: at each
// position the longest matching pattern; a match ending inside the already replaced span is
// skipped, one ending beyond it is replaced as well.
std::string oracle(std::string_view s, rules rs) {
    rules kept;
    for (auto& r : rs) {
        if (r.from.empty() || r.from == r.to) continue;
        bool seen = false;
        for (auto& k : kept) seen = seen || k.from == r.from;
        if (!seen) kept.push_back(r);
    }
    std::string out;
    std::size_t done = 0;
    for (std::size_t p = 0; p < s.size(); ++p) {
        const replacement_set::rule* best = nullptr;
        for (auto& r : kept)
            if (s.substr(p, r.from.size()) == r.from && (!best || r.from.size() > best->from.size())) best = &r;
        if (!best || p + best->from.size() <= done) continue;
        if (p > done) out.append(s.substr(done, p - done));
        out += best->to;
        done = p + best->from.size();
    }
    if (done < s.size()) out.append(s.substr(done));
    return out;
}

TEST(StreamReplace, NoRulesPassesThrough) {
    auto set = make({});
    EXPECT_TRUE(set->empty());
    EXPECT_EQ(stream(set, {"hello", " ", "world"}), "hello world");
}

TEST(StreamReplace, EmptyInput) {
    auto set = make({{"secret", "PH"}});
    EXPECT_EQ(stream(set, {}), "");
    EXPECT_EQ(stream(set, {"", "", ""}), "");
    std::string out;
    EXPECT_EQ(set->replace("", out), 0u);
    EXPECT_EQ(out, "");
}

TEST(StreamReplace, WholeTextReplaceCounts) {
    auto set = make({{"sk-live-123", "PLACEHOLDER"}});
    std::string out;
    EXPECT_EQ(set->replace("a sk-live-123 b sk-live-123", out), 2u);
    EXPECT_EQ(out, "a PLACEHOLDER b PLACEHOLDER");
}

TEST(StreamReplace, MatchSplitAtEverySplitPoint) {
    auto set = make({{"sk-live-123", "PH"}});
    const std::string s = "x\"sk-live-123\"y,sk-live-12,sk-live-123";
    const std::string want = "x\"PH\"y,sk-live-12,PH";
    for (std::size_t i = 0; i <= s.size(); ++i) {
        std::size_t count = 0;
        EXPECT_EQ(stream(set, {s.substr(0, i), s.substr(i)}, &count), want) << "split at " << i;
        EXPECT_EQ(count, 2u);
    }
}

TEST(StreamReplace, EveryPairOfSplitPoints) {
    auto set = make({{"abcab", "1"}, {"bca", "22"}});
    const std::string s = "zabcabcabz";
    const std::string want = oracle(s, {{"abcab", "1"}, {"bca", "22"}});
    for (std::size_t i = 0; i <= s.size(); ++i)
        for (std::size_t j = i; j <= s.size(); ++j)
            EXPECT_EQ(stream(set, {s.substr(0, i), s.substr(i, j - i), s.substr(j)}), want) << i << "," << j;
}

TEST(StreamReplace, OneBytePieces) {
    auto set = make({{"token-AAAA", "ph"}});
    std::string s;
    for (int i = 0; i < 50; ++i) s += (i % 7 == 3) ? "token-AAAA" : "token-AAA;";
    std::vector<std::string> pieces;
    for (char c : s) pieces.emplace_back(1, c);
    EXPECT_EQ(stream(set, pieces), oracle(s, {{"token-AAAA", "ph"}}));
    EXPECT_EQ(stream(set, pieces).find("token-AAAA"), std::string::npos);
}

TEST(StreamReplace, PrefixSecretsLongestFirst) {
    // "abc" is a prefix of "abcdef": the longer wins wherever both match, whatever the order the
    // rules were given in, and also when the pieces end right after "abc".
    for (auto rs : {rules{{"abc", "S"}, {"abcdef", "L"}}, rules{{"abcdef", "L"}, {"abc", "S"}}}) {
        auto set = make(rs);
        EXPECT_EQ(stream(set, {"abcdef abc abcde"}), "L S Sde");
        EXPECT_EQ(stream(set, {"abc", "def"}), "L");
        EXPECT_EQ(stream(set, {"ab", "c", "d", "e", "f"}), "L");
        EXPECT_EQ(stream(set, {"abc", "dex"}), "Sdex");
        EXPECT_EQ(stream(set, {"abc"}), "S");  // end of stream decides the shorter one
    }
}

TEST(StreamReplace, OverlappingSecretsAreBothCovered) {
    auto set = make({{"abcd", "X"}, {"cdef", "Y"}});
    EXPECT_EQ(stream(set, {"abcdef"}), "XY");
    EXPECT_EQ(stream(set, {"ab", "cd", "ef"}), "XY");
    EXPECT_EQ(stream(set, {"zabcdz"}), "zXz");
    EXPECT_EQ(stream(set, {"zcdefz"}), "zYz");
    // A match wholly inside a replaced one adds nothing.
    auto nested = make({{"abcdef", "L"}, {"bcd", "M"}});
    std::size_t count = 0;
    EXPECT_EQ(stream(nested, {"abcdefg"}, &count), "Lg");
    EXPECT_EQ(count, 1u);
    // A chain: every byte of every secret is hidden.
    auto chain = make({{"aaab", "1"}, {"abcc", "2"}, {"ccd", "3"}});
    EXPECT_EQ(stream(chain, {"aaabccd!"}), "123!");
}

TEST(StreamReplace, RepeatedAndSelfOverlappingSecret) {
    auto set = make({{"aa", "X"}});
    EXPECT_EQ(stream(set, {"aaaa"}), "XXX");  // every 'a' pair covered: no "aa" left unreplaced
    EXPECT_EQ(stream(set, {"a", "a", "a"}), "XX");
    auto dup = make({{"s", "first"}, {"s", "second"}, {"", "x"}, {"same", "same"}});
    EXPECT_EQ(dup->rules().size(), 1u);
    EXPECT_EQ(stream(dup, {"s same"}), "first firstame");  // "same" → "same" was dropped; "s" was not
}

TEST(StreamReplace, HoldsBackOnlyWhatCouldStartAMatch) {
    auto set = make({{"secret-value", "PH"}});
    stream_replacer r(set);
    std::string out;
    r.feed("data: 1\n\n", out);  // SSE event: nothing in it can start a match
    EXPECT_EQ(out, "data: 1\n\n");
    EXPECT_EQ(r.held(), 0u);
    r.feed("data: secret-val", out);
    EXPECT_EQ(out, "data: 1\n\ndata: ");
    EXPECT_EQ(r.held(), 10u);  // "secret-val"
    r.feed("ue\n\n", out);
    EXPECT_EQ(out, "data: 1\n\ndata: PH\n\n");
    EXPECT_EQ(r.held(), 0u);
    r.feed("sec", out);
    r.feed("ond\n", out);  // a false start is released as soon as it diverges
    EXPECT_EQ(out, "data: 1\n\ndata: PH\n\nsecond\n");
    EXPECT_EQ(r.held(), 0u);
}

TEST(StreamReplace, LargeStreamBoundedHoldBack) {
    auto set = make({{"0123456789SECRET", "PH"}});
    std::string piece;
    for (int i = 0; i < 4096; ++i) piece += "0123456789abcdef";
    stream_replacer r(set);
    std::string out;
    std::size_t total = 0;
    for (int i = 0; i < 64; ++i) {
        out.clear();
        r.feed(piece, out);
        r.feed("0123456789SEC", out);
        EXPECT_LE(r.held(), 15u);
        r.feed("RET", out);
        total += out.size();
    }
    out.clear();
    r.finish(out);
    total += out.size();
    EXPECT_EQ(r.replacements(), 64u);
    EXPECT_EQ(total, 64 * (piece.size() + 2));
}

TEST(StreamReplace, RandomSplitsMatchTheOracle) {
    std::mt19937 rng(12345);
    auto rand_string = [&](std::size_t max_len, std::string_view alphabet) {
        std::string s(std::uniform_int_distribution<std::size_t>(0, max_len)(rng), ' ');
        for (char& c : s) c = alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
        return s;
    };
    for (int round = 0; round < 2000; ++round) {
        rules rs;
        const int n = std::uniform_int_distribution<int>(1, 4)(rng);
        for (int i = 0; i < n; ++i) rs.push_back({rand_string(5, "abc"), rand_string(3, "XYZ")});
        const std::string s = rand_string(40, "abcd");
        auto set = make(rs);
        std::vector<std::string> pieces;
        for (std::size_t pos = 0; pos < s.size();) {
            std::size_t len = std::uniform_int_distribution<std::size_t>(0, 6)(rng);
            pieces.push_back(s.substr(pos, len));
            pos += len;
        }
        const std::string want = oracle(s, rs);
        ASSERT_EQ(stream(set, pieces), want) << "input " << s << " round " << round;
        std::string whole;
        set->replace(s, whole);
        ASSERT_EQ(whole, want);
    }
}

}  // namespace
}  // namespace iron::core
