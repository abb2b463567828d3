#include "audit/sink.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>

namespace iron::audit {
namespace {

class SinkTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/iron-sink-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        for (const auto& f : files_) ::unlink(f.c_str());
        ::rmdir(dir_.c_str());
    }
    std::string file(const char* name) {
        files_.push_back(dir_ + "/" + name);
        return files_.back();
    }
    static std::vector<std::string> lines(const std::string& path) {
        std::ifstream in(path);
        std::vector<std::string> out;
        for (std::string l; std::getline(in, l);) out.push_back(l);
        return out;
    }
    std::string dir_;
    std::vector<std::string> files_;
};

TEST_F(SinkTest, CreatesFileWithMode0600) {
    std::string p = file("audit.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    struct stat st{};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SinkTest, TightensExistingLooseMode) {
    std::string p = file("loose.log");
    { std::ofstream(p) << "old line\n"; }
    ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    struct stat st{};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    (*s)->emit_line("{\"a\":1}");
    auto ls = lines(p);
    ASSERT_EQ(ls.size(), 2u);  // appended, not truncated
    EXPECT_EQ(ls[0], "old line");
    EXPECT_EQ(ls[1], "{\"a\":1}");
}

TEST_F(SinkTest, OpenError) {
    std::string p = dir_ + "/missing-dir/audit.log";
    auto s = sink::open(p);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.message(), "log.audit_path: cannot open " + p + ": No such file or directory");
}

// The observer (the request metrics, wired by app/) sees every emitted record once, as written;
// raw lines from emit_line() are not records and are not observed.
TEST_F(SinkTest, ObserverSeesEveryEmittedRecordOnce) {
    struct counting final : record_observer {
        std::vector<std::string> hosts;
        void on_record(const record& r) noexcept override { hosts.push_back(r.host); }
    };
    auto seen = std::make_shared<counting>();
    std::string p = file("observed.log");
    auto s = sink::open(p, seen);
    ASSERT_TRUE(s) << s.message();
    for (const char* host : {"a.example", "b.example"}) {
        record r;
        r.host = host;
        (*s)->emit(r);
    }
    (*s)->emit_line("{\"raw\":1}");
    EXPECT_EQ(seen->hosts, (std::vector<std::string>{"a.example", "b.example"}));
    EXPECT_EQ(lines(p).size(), 3u);
}

TEST_F(SinkTest, EmptyPathIsStderr) {
    auto s = sink::open("");
    ASSERT_TRUE(s) << s.message();
    s->reset();  // must not close fd 2
    EXPECT_NE(::fcntl(STDERR_FILENO, F_GETFD), -1);
}

TEST_F(SinkTest, ConcurrentRecordsNeverInterleave) {
    std::string p = file("concurrent.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    constexpr int threads = 8;
    constexpr int per_thread = 250;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                record r;
                r.host = "host-" + std::to_string(t);
                r.path = "/" + std::string(static_cast<std::size_t>(100 + i), 'x');
                r.status_code = i;
                (*s)->emit(r);
            }
        });
    }
    for (auto& t : ts) t.join();
    auto ls = lines(p);
    ASSERT_EQ(ls.size(), static_cast<std::size_t>(threads * per_thread));
    for (const auto& l : ls) {
        boost::json::error_code ec;
        auto v = boost::json::parse(l, ec);
        ASSERT_FALSE(ec) << l;
        EXPECT_EQ(v.at("msg").as_string(), "request");
    }
}

record numbered(int i) {
    record r;
    r.host = "batched.example";
    r.path = "/" + std::to_string(i);
    r.status_code = 200;
    return r;
}

TEST_F(SinkTest, BatchedRecordsAreWrittenAtTheEndOfTheEventLoopTurn) {
    std::string p = file("batched.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    boost::asio::io_context loop;
    batch_scope scope(loop);
    std::size_t seen_inside_turn = 99;
    boost::asio::post(loop, [&] {
        for (int i = 0; i < 3; ++i) (*s)->emit(numbered(i));
        seen_inside_turn = lines(p).size();
    });
    loop.poll();  // the turn that emits, then the flush it queued; nothing else happens
    EXPECT_EQ(seen_inside_turn, 0u);  // batched, not one write per record
    auto ls = lines(p);
    ASSERT_EQ(ls.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_NE(ls[i].find("\"path\":\"/" + std::to_string(i) + "\""), std::string::npos);
}

TEST_F(SinkTest, BatchReachesTheFileWithoutFurtherTrafficOnARunningLoop) {
    std::string p = file("running.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    boost::asio::io_context loop;
    auto guard = boost::asio::make_work_guard(loop);
    std::thread worker([&] {
        batch_scope scope(loop);
        loop.run();
    });
    boost::asio::post(loop, [&] { (*s)->emit(numbered(7)); });  // one record, then silence
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (lines(p).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(lines(p).size(), 1u);
    guard.reset();
    loop.stop();
    worker.join();
}

TEST_F(SinkTest, ScopeEndWritesWhatIsBatched) {
    // Shutdown: the loop stops with a flush still queued; the worker's scope ends after run().
    std::string p = file("shutdown.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    boost::asio::io_context loop;
    {
        batch_scope scope(loop);
        (*s)->emit(numbered(1));
        (*s)->emit(numbered(2));
        loop.stop();
        loop.poll();  // stopped: the queued flush does not run
        EXPECT_EQ(lines(p).size(), 0u);
    }
    EXPECT_EQ(lines(p).size(), 2u);
}

TEST_F(SinkTest, FlushThreadBatchWritesNow) {
    std::string p = file("flush.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    boost::asio::io_context loop;
    batch_scope scope(loop);
    (*s)->emit(numbered(1));
    EXPECT_EQ(lines(p).size(), 0u);
    flush_thread_batch();
    EXPECT_EQ(lines(p).size(), 1u);
}

TEST_F(SinkTest, BatchKeepsOrderAcrossSinksAndOutlivesTheCallersReference) {
    std::string pa = file("a.log"), pb = file("b.log");
    auto a = sink::open(pa);
    auto b = sink::open(pb);
    ASSERT_TRUE(a && b);
    boost::asio::io_context loop;
    batch_scope scope(loop);
    (*a)->emit(numbered(1));
    (*b)->emit(numbered(2));  // another sink: a's line is written first
    EXPECT_EQ(lines(pa).size(), 1u);
    EXPECT_EQ(lines(pb).size(), 0u);
    b->reset();  // the batch keeps the sink open until its lines are written
    loop.poll();
    EXPECT_EQ(lines(pb).size(), 1u);
}

TEST_F(SinkTest, FullBatchIsWrittenWithoutWaitingForTheTurn) {
    std::string p = file("full.log");
    auto s = sink::open(p);
    ASSERT_TRUE(s) << s.message();
    EXPECT_EQ((*s)->max_write(), 64u * 1024);
    boost::asio::io_context loop;
    batch_scope scope(loop);
    record r = numbered(0);
    r.path = "/" + std::string(1000, 'x');
    for (int i = 0; i < 100; ++i) (*s)->emit(r);  // ~110 KiB
    const auto written = lines(p).size();
    EXPECT_GE(written, 50u);
    EXPECT_LT(written, 100u);
    loop.poll();
    EXPECT_EQ(lines(p).size(), 100u);
}

TEST_F(SinkTest, PipesGetAtomicWritesOnly) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto s = sink::open("/proc/self/fd/" + std::to_string(fds[1]));
    ASSERT_TRUE(s) << s.message();
    EXPECT_EQ((*s)->max_write(), static_cast<std::size_t>(PIPE_BUF));
    s->reset();
    ::close(fds[0]);
    ::close(fds[1]);
}

}  // namespace
}  // namespace iron::audit
