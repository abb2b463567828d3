#include "net/watchdog.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include <boost/asio/io_context.hpp>

namespace iron::net {
namespace {

using namespace std::chrono_literals;

TEST(Watchdog, FiresAtTheDeadline) {
    boost::asio::io_context ioc;
    bool fired = false;
    watchdog dog(ioc.get_executor(), [&] { fired = true; });
    dog.expires_after(5ms);
    ioc.run_for(5s);
    EXPECT_TRUE(fired);
    EXPECT_TRUE(dog.fired());
}

TEST(Watchdog, MovedLaterFiresOnceAtTheNewDeadline) {
    boost::asio::io_context ioc;
    int fired = 0;
    watchdog dog(ioc.get_executor(), [&] { ++fired; });
    const auto start = watchdog::clock::now();
    dog.expires_after(5ms);
    dog.expires_after(30ms);
    ioc.run_for(5s);
    EXPECT_EQ(fired, 1);
    EXPECT_GE(watchdog::clock::now() - start, 30ms);
}

// A watchdog disarmed before its old deadline, and still alive when that time passes, must leave
// nothing pending: run() returns once the io_context is out of work. (A wait re-armed at
// time_point::max kept one operation and the watchdog's state alive per disarmed watchdog.)
TEST(Watchdog, DisarmedDeadlineLeavesNoPendingWait) {
    boost::asio::io_context ioc;
    bool fired = false;
    watchdog dog(ioc.get_executor(), [&] { fired = true; });
    dog.expires_after(5ms);
    dog.disarm();
    ioc.run_for(5s);
    EXPECT_TRUE(ioc.stopped());
    EXPECT_FALSE(fired);
    // Re-armed after that, it fires again.
    ioc.restart();
    dog.expires_after(5ms);
    ioc.run_for(5s);
    EXPECT_TRUE(fired);
}

}  // namespace
}  // namespace iron::net
