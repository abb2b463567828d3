#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "runtime/state.hpp"

namespace iron::runtime {
namespace {

std::shared_ptr<const request_policy> empty_pipeline() {
    auto p = std::make_shared<request_policy>();
    p->pipeline = std::make_shared<const pipeline::pipeline>(std::vector<std::unique_ptr<const pipeline::transform>>{});
    return p;
}

TEST(PolicySlot, SnapshotOutlivesASwap) {
    auto first = empty_pipeline();
    std::weak_ptr<const request_policy> first_alive = first;
    policy_slot slot(std::move(first));
    auto snapshot = slot.get();  // a request in flight
    auto second = empty_pipeline();
    const auto* second_raw = second.get();
    slot.set(std::move(second));
    EXPECT_EQ(slot.get().get(), second_raw);  // new requests see the new pipeline at once
    EXPECT_FALSE(first_alive.expired());      // the old one stays while the request uses it
    snapshot.reset();
    slot.get();                               // this thread's cache moved on too
    EXPECT_TRUE(first_alive.expired());       // and then it is freed
}

TEST(PolicySlot, OtherThreadsSeeTheSwap) {
    policy_slot slot(empty_pipeline());
    auto next = empty_pipeline();
    const auto* next_raw = next.get();
    std::thread([&] { EXPECT_NE(slot.get().get(), next_raw); }).join();
    slot.set(std::move(next));
    std::thread([&] { EXPECT_EQ(slot.get().get(), next_raw); }).join();
}

TEST(PolicySlot, SlotsAreToldApart) {
    auto a = std::make_unique<policy_slot>(empty_pipeline());
    auto b = std::make_unique<policy_slot>(empty_pipeline());
    EXPECT_NE(a->get().get(), b->get().get());
    EXPECT_NE(b->get().get(), a->get().get());
}

}  // namespace
}  // namespace iron::runtime
