// exchange::note_injected / hide_injected: what the judge (a third party) may be shown of a request.
#include <gtest/gtest.h>

#include "pipeline/exchange.hpp"

namespace iron::pipeline {
namespace {

TEST(InjectedSecrets, HiddenRawAndPercentEncoded) {
    exchange ex;
    ex.note_injected("s3cr et/+");
    EXPECT_EQ(ex.hide_injected("a=s3cr et/+&b=s3cr%20et%2F%2B"), "a=[REDACTED]&b=[REDACTED]");
}

TEST(InjectedSecrets, LongestValueHiddenWhole) {
    exchange ex;
    ex.note_injected("tok");
    ex.note_injected("Bearer tok");
    EXPECT_EQ(ex.hide_injected("Authorization: Bearer tok; tok"), "Authorization: [REDACTED]; [REDACTED]");
}

TEST(InjectedSecrets, NothingRecordedNothingChanged) {
    exchange ex;
    ex.note_injected("");
    EXPECT_TRUE(ex.injected_secrets.empty());
    EXPECT_EQ(ex.hide_injected("tok tok"), "tok tok");
}

TEST(InjectedSecrets, AdjacentOccurrencesAllHidden) {
    exchange ex;
    ex.note_injected("ab");
    EXPECT_EQ(ex.hide_injected("ababab"), "[REDACTED][REDACTED][REDACTED]");
}

}  // namespace
}  // namespace iron::pipeline
