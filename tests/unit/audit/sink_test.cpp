#include "audit/sink.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

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

}  // namespace
}  // namespace iron::audit
