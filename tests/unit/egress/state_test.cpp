#include "egress/state.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.hpp"

namespace iron::egress {
namespace {

std::string read(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

unsigned mode_bits(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

runtime_state sample() {
    runtime_state s;
    s.mode_override = mode::warn;
    s.rules = {{"rt-1", rule_kind::host, "*.example.com"}, {"rt-3", rule_kind::cidr, "10.0.0.0/8"}};
    s.next_id = 4;
    return s;
}

void expect_same(const runtime_state& a, const runtime_state& b) {
    EXPECT_EQ(a.mode_override, b.mode_override);
    EXPECT_EQ(a.next_id, b.next_id);
    ASSERT_EQ(a.rules.size(), b.rules.size());
    for (std::size_t i = 0; i < a.rules.size(); ++i) {
        EXPECT_EQ(a.rules[i].id, b.rules[i].id);
        EXPECT_EQ(a.rules[i].kind, b.rules[i].kind);
        EXPECT_EQ(a.rules[i].value, b.rules[i].value);
    }
}

TEST(EgressState, RendersAndParsesBack) {
    const std::string text = render_state(sample());
    EXPECT_EQ(text,
              "{\"version\":1,\"mode\":\"warn\",\"next_id\":4,\"rules\":[{\"id\":\"rt-1\",\"host\":\"*.example.com\"},"
              "{\"id\":\"rt-3\",\"cidr\":\"10.0.0.0/8\"}]}\n");
    auto parsed = parse_state(text);
    ASSERT_TRUE(parsed) << parsed.message();
    expect_same(*parsed, sample());
    // No mode: the config's own warn settings apply.
    auto bare = parse_state(render_state(runtime_state{}));
    ASSERT_TRUE(bare) << bare.message();
    EXPECT_TRUE(bare->empty());
    EXPECT_EQ(bare->next_id, 1u);
}

TEST(EgressState, NextIdNeverFallsBehindTheIdsInUse) {
    auto parsed = parse_state(R"({"version":1,"next_id":2,"rules":[{"id":"rt-7","host":"a.test"}]})");
    ASSERT_TRUE(parsed) << parsed.message();
    EXPECT_EQ(parsed->next_id, 8u);
}

TEST(EgressState, RefusesWhatItCannotTrust) {
    const std::pair<const char*, const char*> cases[] = {
        {"", "not valid JSON"},
        {"{", "not valid JSON"},
        {"[]", "expected a JSON object"},
        {R"({"rules":[]})", "version: missing"},
        {R"({"version":2})", "version: expected 1"},
        {R"({"version":1,"extra":true})", "unknown key \"extra\""},
        {R"({"version":1,"mode":"loud"})", "mode: expected"},
        {R"({"version":1,"mode":3})", "mode: expected"},
        {R"({"version":1,"next_id":0})", "next_id"},
        {R"({"version":1,"rules":{}})", "rules: expected a list"},
        {R"({"version":1,"rules":["a.test"]})", "rules[0]: expected an object"},
        {R"({"version":1,"rules":[{"id":"rt-1"}]})", "exactly one"},
        {R"({"version":1,"rules":[{"id":"rt-1","host":"a.test","cidr":"10.0.0.0/8"}]})", "exactly one"},
        {R"({"version":1,"rules":[{"id":"x","host":"a.test"}]})", "id must look like"},
        {R"({"version":1,"rules":[{"id":"rt-0","host":"a.test"}]})", "id must look like"},
        {R"({"version":1,"rules":[{"id":"rt-1","host":"a.test","why":"x"}]})", "unknown key \"why\""},
        {R"({"version":1,"rules":[{"id":"rt-1","host":7}]})", "rules[0].host: expected a string"},
        {R"({"version":1,"rules":[{"id":"rt-1","host":"bad["}]})", "invalid glob"},
        {R"({"version":1,"rules":[{"id":"rt-1","cidr":"10.0.0.0/33"}]})", "CIDR"},
        {R"({"version":1,"rules":[{"id":"rt-1","host":""}]})", "must not be empty"},
        {R"({"version":1,"rules":[{"id":"rt-1","host":"a.test"},{"id":"rt-1","host":"b.test"}]})", "duplicate id rt-1"},
    };
    for (const auto& [text, needle] : cases) {
        auto parsed = parse_state(text);
        ASSERT_FALSE(parsed) << text;
        EXPECT_NE(parsed.message().find(needle), std::string::npos) << text << " → " << parsed.message();
    }
}

TEST(EgressState, LoadsNothingWhenThereIsNoFileYet) {
    test::temp_dir dir;
    auto loaded = load_state(dir / "state.json");
    ASSERT_TRUE(loaded) << loaded.message();
    EXPECT_TRUE(loaded->empty());
    auto unset = load_state("");
    ASSERT_TRUE(unset);
    EXPECT_TRUE(unset->empty());
}

TEST(EgressState, LoadErrorsNameTheFile) {
    test::temp_dir dir;
    const std::string corrupt = dir / "corrupt.json";
    write(corrupt, "{\"version\":1,");
    auto loaded = load_state(corrupt);
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.message().find("management.state_path " + corrupt + ": not valid JSON"), std::string::npos)
        << loaded.message();

    const std::string not_a_file = dir / "dir.json";
    std::filesystem::create_directory(not_a_file);
    loaded = load_state(not_a_file);
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.message().find("management.state_path " + not_a_file), std::string::npos) << loaded.message();

    loaded = load_state(dir / "missing/state.json");
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.message().find("does not exist"), std::string::npos) << loaded.message();
}

TEST(EgressState, SavesAtomicallyWithMode0600) {
    test::temp_dir dir;
    const std::string path = dir / "state.json";
    write(path, "old");
    ::chmod(path.c_str(), 0644);
    write(path + ".tmp", "left over from a crash");
    ::chmod((path + ".tmp").c_str(), 0644);
    ASSERT_TRUE(save_state(path, sample()));
    EXPECT_EQ(mode_bits(path), 0600u);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    EXPECT_EQ(read(path), render_state(sample()));
    auto loaded = load_state(path);
    ASSERT_TRUE(loaded) << loaded.message();
    expect_same(*loaded, sample());
}

TEST(EgressState, SaveErrorsNameTheFile) {
    test::temp_dir dir;
    const std::string path = dir / "missing/state.json";
    auto saved = save_state(path, sample());
    ASSERT_FALSE(saved);
    EXPECT_NE(saved.message().find("writing management.state_path " + path), std::string::npos) << saved.message();
}

TEST(EgressState, RuleValuesAreCheckedLikeAllowlistEntries) {
    EXPECT_TRUE(check_rule_value(rule_kind::host, "*.example.com"));
    EXPECT_TRUE(check_rule_value(rule_kind::cidr, "192.168.0.0/16"));
    EXPECT_TRUE(check_rule_value(rule_kind::cidr, "2001:db8::/32"));
    EXPECT_FALSE(check_rule_value(rule_kind::host, "a[b"));
    EXPECT_FALSE(check_rule_value(rule_kind::cidr, "example.com"));
    EXPECT_FALSE(check_rule_value(rule_kind::host, ""));
}

}  // namespace
}  // namespace iron::egress
