// Secret sources: env / file / control_plane, json_key, refresh and TTL semantics, strict
// parsing, and that no error text ever carries a value.
#include "secrets/source.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "config/yaml_util.hpp"
#include "secrets/file_source.hpp"
#include "secrets/parse.hpp"

namespace iron::secrets {
namespace {

using namespace std::chrono_literals;

class SecretSources : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/iron-secrets-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        for (const auto& f : files_) std::remove(f.c_str());
        rmdir(dir_.c_str());
        unsetenv("IRON_TEST_SECRET");
    }
    std::string write(const std::string& name, const std::string& text) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
        if (std::find(files_.begin(), files_.end(), path) == files_.end()) files_.push_back(path);
        return path;
    }
    result<std::shared_ptr<source>> parse(const std::string& yaml) {
        YAML::Node root = YAML::Load(yaml);
        return parse_source(root["source"], config::yaml_ctx{"c.yaml", "secrets[0].source"});
    }
    static std::string value_of(const source& s) {
        auto v = s.current();
        return v ? **v : "<unavailable: " + v.message() + ">";
    }

    std::string dir_;
    std::vector<std::string> files_;
};

TEST_F(SecretSources, EnvReadsAtRefreshAndSeesChanges) {
    setenv("IRON_TEST_SECRET", "first", 1);
    env_source s("IRON_TEST_SECRET");
    EXPECT_FALSE(s.current());  // nothing fetched before the first refresh
    s.refresh();
    EXPECT_EQ(value_of(s), "first");
    EXPECT_EQ(s.name(), "IRON_TEST_SECRET");
    setenv("IRON_TEST_SECRET", "second", 1);
    EXPECT_EQ(value_of(s), "first");  // current() never re-reads
    s.refresh();
    EXPECT_EQ(value_of(s), "second");
}

TEST_F(SecretSources, EnvUnsetOrEmptyIsUnavailable) {
    unsetenv("IRON_TEST_SECRET");
    env_source s("IRON_TEST_SECRET");
    s.refresh();
    auto v = s.current();
    ASSERT_FALSE(v);
    EXPECT_EQ(v.message(), "secret \"IRON_TEST_SECRET\" unavailable: env var \"IRON_TEST_SECRET\" is not set or empty");
    setenv("IRON_TEST_SECRET", "", 1);
    s.refresh();
    EXPECT_FALSE(s.current());
}

TEST_F(SecretSources, StaleValueKeptWhenRefreshFails) {
    setenv("IRON_TEST_SECRET", "good", 1);
    env_source s("IRON_TEST_SECRET");
    s.refresh();
    unsetenv("IRON_TEST_SECRET");
    s.refresh();
    EXPECT_EQ(value_of(s), "good");
}

TEST_F(SecretSources, FileStripsExactlyOneTrailingNewline) {
    struct {
        const char* content;
        const char* want;
    } cases[] = {
        {"s3cret", "s3cret"},       {"s3cret\n", "s3cret"},  {"s3cret\r\n", "s3cret"},
        {"s3cret\n\n", "s3cret\n"}, {" spaced \n", " spaced "}, {"a\nb\n", "a\nb"},
    };
    for (const auto& c : cases) {
        file_source s(write("k", c.content), 0ns, 0ns);
        EXPECT_EQ(value_of(s), c.want) << c.content;
    }
}

TEST_F(SecretSources, FileEmptyOrMissingIsUnavailable) {
    file_source empty(write("empty", "\n"), 0ns, 0ns);
    auto v = empty.current();
    ASSERT_FALSE(v);
    EXPECT_NE(v.message().find("is empty"), std::string::npos);

    file_source missing(dir_ + "/nope", 0ns, 0ns);
    v = missing.current();
    ASSERT_FALSE(v);
    EXPECT_EQ(v.message(), "secret \"nope\" unavailable: reading secret file \"" + dir_ +
                               "/nope\": No such file or directory");
}

TEST_F(SecretSources, FileNameIsBasenameUnlessConfigured) {
    file_source a(write("openai_key", "x"), 0ns, 0ns);
    EXPECT_EQ(a.name(), "openai_key");
    file_source b(write("openai_key", "x"), 0ns, 0ns, "OPENAI");
    EXPECT_EQ(b.name(), "OPENAI");
    EXPECT_EQ(path_basename("/run/secrets/k"), "k");
    EXPECT_EQ(path_basename("k"), "k");
    EXPECT_EQ(path_basename("/a/dir/"), "dir");
}

TEST_F(SecretSources, FileRefreshSeesNewContents) {
    std::string path = write("rot", "old-value\n");
    file_source s(path, 0ns, 0ns);
    EXPECT_EQ(value_of(s), "old-value");
    write("rot", "new-value\n");
    EXPECT_EQ(value_of(s), "old-value");  // no TTL: only refresh() re-reads
    s.refresh();
    EXPECT_EQ(value_of(s), "new-value");
    // A vanished file keeps the last good value (rotation must not fail requests).
    std::remove(path.c_str());
    s.refresh();
    EXPECT_EQ(value_of(s), "new-value");
}

TEST_F(SecretSources, FileTtlRefreshesInTheBackground) {
    std::string path = write("ttl", "v1");
    file_source s(path, 20ms, 0ns);
    EXPECT_EQ(value_of(s), "v1");
    write("ttl", "v2");
    for (int i = 0; i < 200 && value_of(s) != "v2"; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(value_of(s), "v2");
}

TEST_F(SecretSources, FileFailureRetriedAfterFailureTtl) {
    std::string path = dir_ + "/late";
    file_source s(path, 0ns, 20ms);
    EXPECT_FALSE(s.current());
    write("late", "arrived");
    for (int i = 0; i < 200 && !s.current(); ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(value_of(s), "arrived");
}

TEST_F(SecretSources, JsonKeyExtractsStringField) {
    auto ok = extract_json_key(R"({"token":"abc","n":1})", "token");
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, "abc");
    auto not_json = extract_json_key("s3cr3t-not-json", "token");
    ASSERT_FALSE(not_json);
    EXPECT_EQ(not_json.message(), "json_key \"token\": value is not a JSON object");
    EXPECT_EQ(not_json.message().find("s3cr3t"), std::string::npos);
    EXPECT_EQ(extract_json_key(R"({"x":"y"})", "token").message(), "json_key \"token\": key not found");
    EXPECT_EQ(extract_json_key(R"({"token":5})", "token").message(), "json_key \"token\": value is not a string");
}

TEST_F(SecretSources, ParseEnvFileControlPlane) {
    setenv("IRON_TEST_SECRET", R"({"k":"from-json"})", 1);
    auto env = parse("source: {type: env, var: IRON_TEST_SECRET, json_key: k}\n");
    ASSERT_TRUE(env) << env.message();
    EXPECT_EQ(value_of(**env), "from-json");
    EXPECT_EQ((*env)->name(), "IRON_TEST_SECRET");

    std::string path = write("f", "file-value\n");
    auto file = parse("source: {type: file, path: " + path + ", ttl: 30s, failure_ttl: 5s, name: custom}\n");
    ASSERT_TRUE(file) << file.message();
    EXPECT_EQ(value_of(**file), "file-value");
    EXPECT_EQ((*file)->name(), "custom");

    auto cp = parse("source: {type: control_plane, value: inline}\n");
    ASSERT_TRUE(cp) << cp.message();
    EXPECT_EQ(value_of(**cp), "inline");
    EXPECT_EQ((*cp)->name(), "control_plane");
}

TEST_F(SecretSources, ParseErrors) {
    struct {
        const char* yaml;
        const char* want;
    } cases[] = {
        {"source: {var: X}\n", "c.yaml:1:9: secrets[0].source: source.type is required"},
        {"source: {type: vault}\n", "c.yaml:1:16: secrets[0].source.type: unsupported source type \"vault\""},
        {"source: {type: aws_sm}\n", "c.yaml:1:9: secrets[0].source: source.secret_id is required"},
        {"source: {type: aws_ssm, name: /p, with_decryption: maybe}\n",
         "c.yaml:1:52: secrets[0].source.with_decryption: expected a boolean (true or false), got \"maybe\""},
        {"source: {type: 1password, secret_ref: \"op://v/i/f\"}\n",
         "c.yaml:1:16: secrets[0].source.type: source type \"1password\" (a service account through 1Password's "
         "proprietary SDK) is not supported by this build: run a 1Password Connect server and use type: "
         "1password_connect (OP_CONNECT_HOST, OP_CONNECT_TOKEN) with the same secret_ref"},
        {"source: {type: env}\n", "c.yaml:1:9: secrets[0].source: source.var is required"},
        {"source: {type: env, var: X, path: y}\n",
         "c.yaml:1:29: secrets[0].source: unknown key \"path\" (allowed: type, var, json_key, name)"},
        {"source: {type: file}\n", "c.yaml:1:9: secrets[0].source: source.path is required"},
        {"source: {type: file, path: /x, ttl: -1s}\n",
         "c.yaml:1:37: secrets[0].source.ttl: ttl must not be negative; got -1s"},
        {"source: env\n", "c.yaml:1:9: secrets[0].source: expected a map like {type: env, var: NAME}"},
        {"other: 1\n", "c.yaml: secrets[0].source: source is required"},
    };
    for (const auto& c : cases) {
        auto r = parse(c.yaml);
        ASSERT_FALSE(r) << c.yaml;
        EXPECT_EQ(r.message(), c.want) << c.yaml;
    }
}

TEST_F(SecretSources, ValueBuffersSharedAcrossRefresh) {
    // A request holding a value keeps it valid while a refresh publishes a new one.
    setenv("IRON_TEST_SECRET", "one", 1);
    env_source s("IRON_TEST_SECRET");
    s.refresh();
    value_ptr held = *s.current();
    setenv("IRON_TEST_SECRET", "two", 1);
    s.refresh();
    EXPECT_EQ(*held, "one");
    EXPECT_EQ(value_of(s), "two");
}

TEST_F(SecretSources, ConcurrentReadersAndRefreshers) {
    // Rotation the usual way (write a temp file, rename over): readers always see old or new.
    std::string path = write("c", "a");
    file_source s(path, 0ns, 0ns);
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0}, reads{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 2; ++i) {
        readers.emplace_back([&] {
            while (!stop) {
                auto v = s.current();
                if (!v || ((**v) != "a" && (**v) != "b")) ++bad;
                ++reads;
                std::this_thread::yield();
            }
        });
    }
    for (int i = 0; i < 100; ++i) {
        std::string tmp = write("c.tmp", i % 2 ? "a" : "b");
        ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
        s.refresh();
    }
    stop = true;
    for (auto& t : readers) t.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace iron::secrets
