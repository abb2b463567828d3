#include "otel/queue.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace iron::otel {
namespace {

TEST(OtelQueue, DropsWhenFullAndCountsEachDropOnce) {
    record_queue q(3);
    std::size_t size = 0;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(q.push(std::to_string(i), size), record_queue::pushed::queued);
    EXPECT_EQ(size, 3u);
    EXPECT_EQ(q.push("x", size), record_queue::pushed::dropped);
    EXPECT_EQ(q.push("y", size), record_queue::pushed::dropped);
    EXPECT_EQ(q.take_dropped(), 2u);
    EXPECT_EQ(q.take_dropped(), 0u);
    auto batch = q.take(2);
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(batch[0], "0");  // oldest first
    EXPECT_EQ(batch[1], "1");
    EXPECT_EQ(q.push("3", size), record_queue::pushed::queued);
    EXPECT_EQ(q.take(10), (std::vector<std::string>{"2", "3"}));
    EXPECT_EQ(q.size(), 0u);
}

TEST(OtelQueue, ConcurrentProducersNeverLoseACount) {
    record_queue q(1000);
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t)
        producers.emplace_back([&q] {
            std::size_t size = 0;
            for (int i = 0; i < 500; ++i) (void)q.push("r", size);
        });
    std::size_t taken = 0;
    for (int i = 0; i < 200; ++i) taken += q.take(7).size();
    for (auto& p : producers) p.join();
    taken += q.take(5000).size();
    EXPECT_EQ(taken + q.take_dropped(), 2000u);
}

}  // namespace
}  // namespace iron::otel
