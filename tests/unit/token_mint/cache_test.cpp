// The token cache's single flight and freshness: callers on several event loops (threads) that
// ask together share one fetch; a fresh token is reused; a new fingerprint (rotated credentials)
// or an expired token fetches again; a failure is not cached; a waiter that outlives its bound
// gives up.
#include <atomic>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "token_mint/cache.hpp"

namespace iron::token_mint {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A fetch that takes `delay` and returns token "t<n>" valid for `lifetime`.
token_cache::fetcher counting_fetch(std::atomic<int>& fetches, std::chrono::milliseconds delay, std::chrono::seconds lifetime,
                                    bool fail = false) {
    return [&fetches, delay, lifetime, fail]() -> asio::awaitable<mint_outcome> {
        const int n = ++fetches;
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(delay);
        co_await t.async_wait(asio::use_awaitable);
        if (fail) co_return mint_outcome::failure("token_endpoint_http_503", "down");
        mint_outcome o;
        o.token = secrets::make_value("t" + std::to_string(n));
        o.lifetime = lifetime;
        co_return o;
    };
}

// Runs `get` once on its own io_context thread per caller, all at once; returns their tokens.
std::vector<std::string> ask_together(token_cache& cache, int callers, const token_cache::fetcher& fetch,
                                      std::chrono::nanoseconds bound = 5s, std::string fp = "fp") {
    std::vector<std::string> got(static_cast<std::size_t>(callers));
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; ++i) {
        threads.emplace_back([&, i] {
            asio::io_context io;
            asio::co_spawn(io, [&]() -> asio::awaitable<void> {
                mint_outcome o = co_await cache.get(fp, fetch, bound);
                got[static_cast<std::size_t>(i)] = o.ok() ? *o.token : "error:" + o.reason;
            }, asio::detached);
            io.run();
        });
    }
    for (auto& t : threads) t.join();
    return got;
}

TEST(TokenCache, ConcurrentCallersShareOneFetch) {
    token_cache cache;
    std::atomic<int> fetches{0};
    auto got = ask_together(cache, 8, counting_fetch(fetches, 200ms, 3600s));
    EXPECT_EQ(fetches.load(), 1);
    EXPECT_EQ(cache.fetches(), 1u);
    for (const auto& g : got) EXPECT_EQ(g, "t1");
    // Fresh: reused without a fetch.
    got = ask_together(cache, 2, counting_fetch(fetches, 0ms, 3600s));
    EXPECT_EQ(fetches.load(), 1);
    EXPECT_EQ(got[0], "t1");
    EXPECT_TRUE(cache.cached("fp").ok());
    EXPECT_FALSE(cache.cached("other").ok());
}

TEST(TokenCache, NewFingerprintFetchesAgain) {
    token_cache cache;
    std::atomic<int> fetches{0};
    ask_together(cache, 1, counting_fetch(fetches, 0ms, 3600s), 5s, "old");
    auto got = ask_together(cache, 3, counting_fetch(fetches, 50ms, 3600s), 5s, "new");
    EXPECT_EQ(fetches.load(), 2);
    for (const auto& g : got) EXPECT_EQ(g, "t2");
    EXPECT_FALSE(cache.cached("old").ok());
}

TEST(TokenCache, ExpiredTokenIsRefreshed) {
    token_cache cache;
    std::atomic<int> fetches{0};
    // A 1 s token is fresh for half its life.
    ask_together(cache, 1, counting_fetch(fetches, 0ms, 1s));
    std::this_thread::sleep_for(700ms);
    auto got = ask_together(cache, 4, counting_fetch(fetches, 50ms, 1s));
    EXPECT_EQ(fetches.load(), 2);
    for (const auto& g : got) EXPECT_EQ(g, "t2");
}

TEST(TokenCache, FailureSharedButNotCached) {
    token_cache cache;
    std::atomic<int> fetches{0};
    auto got = ask_together(cache, 4, counting_fetch(fetches, 100ms, 3600s, true));
    EXPECT_EQ(fetches.load(), 1);
    for (const auto& g : got) EXPECT_EQ(g, "error:token_endpoint_http_503");
    got = ask_together(cache, 1, counting_fetch(fetches, 0ms, 3600s));
    EXPECT_EQ(fetches.load(), 2);
    EXPECT_EQ(got[0], "t2");
}

TEST(TokenCache, WaiterGivesUpAfterItsBound) {
    token_cache cache;
    std::atomic<int> fetches{0};
    auto fetch = counting_fetch(fetches, 600ms, 3600s);
    std::string leader, waiter;
    std::thread first([&] { leader = ask_together(cache, 1, fetch)[0]; });
    std::this_thread::sleep_for(100ms);
    waiter = ask_together(cache, 1, fetch, 100ms)[0];
    first.join();
    EXPECT_EQ(waiter, "error:mint_failed");
    EXPECT_EQ(leader, "t1");
    EXPECT_EQ(fetches.load(), 1);
}

TEST(TokenCache, RefreshSkew) {
    EXPECT_EQ(refresh_skew(3600s), 60s);
    EXPECT_EQ(refresh_skew(60s), 30s);
    EXPECT_EQ(refresh_skew(1s), 500ms);
    EXPECT_EQ(refresh_skew(0s), 60s);  // unknown lifetime: taken as one hour
}

}  // namespace
}  // namespace iron::token_mint
