// The judge's circuit breaker: opens after N consecutive failures, one half-open probe after the
// cooldown, closes on the probe's success, reopens on its failure.
#include "transforms/judge/breaker.hpp"

#include <gtest/gtest.h>

namespace iron::transforms::judge {
namespace {

using clock = circuit_breaker::clock;
using outcome = circuit_breaker::outcome;
using state = circuit_breaker::state;

struct fake_time {
    clock::time_point now = clock::time_point() + std::chrono::hours(1);
};

circuit_breaker make(fake_time& t, std::size_t threshold = 3) {
    return circuit_breaker(threshold, std::chrono::seconds(10), [&t] { return t.now; });
}

void fail_once(circuit_breaker& b) {
    auto p = b.try_acquire();
    ASSERT_TRUE(p);
    p.settle(outcome::failure);
}

TEST(JudgeBreaker, OpensAfterConsecutiveFailuresOnly) {
    fake_time t;
    auto b = make(t);
    fail_once(b);
    fail_once(b);
    b.try_acquire().settle(outcome::success);  // resets the count
    fail_once(b);
    fail_once(b);
    EXPECT_EQ(b.current(), state::closed);
    fail_once(b);
    EXPECT_EQ(b.current(), state::open);
    EXPECT_FALSE(b.try_acquire());
    t.now += std::chrono::seconds(9);
    EXPECT_FALSE(b.try_acquire());
}

TEST(JudgeBreaker, SingleHalfOpenProbe) {
    fake_time t;
    auto b = make(t, 1);
    fail_once(b);
    t.now += std::chrono::seconds(10);
    auto probe = b.try_acquire();
    ASSERT_TRUE(probe);
    EXPECT_EQ(b.current(), state::half_open);
    EXPECT_FALSE(b.try_acquire());  // the probe is out
    probe.settle(outcome::success);
    EXPECT_EQ(b.current(), state::closed);
    EXPECT_TRUE(b.try_acquire());
}

TEST(JudgeBreaker, FailedProbeReopensForAnotherCooldown) {
    fake_time t;
    auto b = make(t, 1);
    fail_once(b);
    t.now += std::chrono::seconds(11);
    fail_once(b);  // the probe
    EXPECT_EQ(b.current(), state::open);
    t.now += std::chrono::seconds(5);
    EXPECT_FALSE(b.try_acquire());
    t.now += std::chrono::seconds(5);
    EXPECT_TRUE(b.try_acquire());
}

TEST(JudgeBreaker, AbandonedProbeLetsTheNextRequestProbe) {
    fake_time t;
    auto b = make(t, 1);
    fail_once(b);
    t.now += std::chrono::seconds(10);
    { auto probe = b.try_acquire(); ASSERT_TRUE(probe); }  // destroyed unsettled
    EXPECT_EQ(b.current(), state::half_open);
    EXPECT_TRUE(b.try_acquire());
}

TEST(JudgeBreaker, SettlesOnce) {
    fake_time t;
    auto b = make(t, 1);
    auto p = b.try_acquire();
    p.settle(outcome::success);
    p.settle(outcome::failure);  // ignored
    EXPECT_EQ(b.current(), state::closed);
}

}  // namespace
}  // namespace iron::transforms::judge
