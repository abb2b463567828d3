// remote_source: fetched on first demand only, on its own thread; failures cached for
// failure_ttl; the last value served while refreshes fail; a fetch in flight cut short on
// destruction.
#include "secrets/remote_source.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace iron::secrets {
namespace {

using namespace std::chrono_literals;

struct script {
    std::atomic<int> calls{0};
    std::atomic<bool> fail{false};
    std::atomic<int> version{1};
};

class scripted_fetcher final : public store_fetcher {
public:
    explicit scripted_fetcher(std::shared_ptr<script> s) : s_(std::move(s)) {}
    result<std::string> fetch(outbound::cancel_handle&) override {
        ++s_->calls;
        if (s_->fail) return make_error("store says no");
        return "value-" + std::to_string(s_->version.load());
    }

private:
    std::shared_ptr<script> s_;
};

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 3000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (p()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return p();
}

std::string value_of(const source& s) {
    auto v = s.current();
    return v ? **v : "ERR: " + v.message();
}

TEST(RemoteSource, NothingBeforeDemandThenOneFetch) {
    auto sc = std::make_shared<script>();
    remote_source src("id", "", 0ns, 0ns, std::make_unique<scripted_fetcher>(sc));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(sc->calls, 0);
    EXPECT_TRUE(src.pending());
    EXPECT_FALSE(src.current());  // asks for the value: the thread starts
    ASSERT_TRUE(eventually([&] { return !src.pending(); }));
    EXPECT_EQ(value_of(src), "value-1");
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(sc->calls, 1);  // ttl 0: cached for good
}

TEST(RemoteSource, FailureCachedForFailureTtlThenRecovers) {
    auto sc = std::make_shared<script>();
    sc->fail = true;
    remote_source src("id", "", 0ns, 200ms, std::make_unique<scripted_fetcher>(sc));
    src.demand();
    ASSERT_TRUE(eventually([&] { return !src.pending(); }));
    EXPECT_NE(value_of(src).find("store says no"), std::string::npos);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(sc->calls, 1);
    sc->fail = false;
    ASSERT_TRUE(eventually([&] { return value_of(src) == "value-1"; }));
    EXPECT_EQ(sc->calls, 2);
}

TEST(RemoteSource, StaleWhileFailingAndTtlRefresh) {
    auto sc = std::make_shared<script>();
    remote_source src("id", "", 100ms, 0ns, std::make_unique<scripted_fetcher>(sc));
    src.demand();
    ASSERT_TRUE(eventually([&] { return value_of(src) == "value-1"; }));
    sc->fail = true;
    ASSERT_TRUE(eventually([&] { return sc->calls >= 4; }));
    EXPECT_EQ(value_of(src), "value-1");
    sc->version = 2;
    sc->fail = false;
    EXPECT_TRUE(eventually([&] { return value_of(src) == "value-2"; }));
}

TEST(RemoteSource, JsonKeyAndReloadWithoutDemandStaysLazy) {
    class json_fetcher final : public store_fetcher {
        result<std::string> fetch(outbound::cancel_handle&) override { return std::string(R"({"k":"v","n":1})"); }
    };
    remote_source src("id", "k", 0ns, 0ns, std::make_unique<json_fetcher>());
    src.reload();
    std::this_thread::sleep_for(30ms);
    EXPECT_TRUE(src.pending());
    src.demand();
    ASSERT_TRUE(eventually([&] { return !src.pending(); }));
    EXPECT_EQ(value_of(src), "v");
}

TEST(RemoteSource, DestructionCutsAFetchInFlight) {
    // A store that never answers: the blocking client call must end when the source goes.
    class hanging_fetcher final : public store_fetcher {
    public:
        result<std::string> fetch(outbound::cancel_handle& cancel) override {
            while (!cancel.cancelled()) std::this_thread::sleep_for(1ms);
            return make_error("cancelled");
        }
    };
    const auto start = std::chrono::steady_clock::now();
    {
        remote_source src("id", "", 0ns, 0ns, std::make_unique<hanging_fetcher>());
        src.demand();
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

}  // namespace
}  // namespace iron::secrets
