// The MCP policy's parts: config decoding, `when` clauses, JSON-RPC classification, the denial
// body, and the answer filters (JSON held to the end, event streams event by event across pieces).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json/parse.hpp>

#include "mcp/filters.hpp"
#include "mcp/jsonrpc.hpp"
#include "mcp/policy.hpp"
#include "mcp/record.hpp"

namespace iron::mcp {
namespace {

policy load(const std::string& yaml) {
    auto p = parse_policy(YAML::Load(yaml), "t.yaml");
    EXPECT_TRUE(p) << (p ? "" : p.message());
    return p && *p ? std::move(**p) : policy{};
}

const char* kPolicy = R"(
servers:
  - name: s
    rules: [{host: "x.test"}]
    tools:
      - name: search
      - name: create
        when:
          - {path: owner, equals: ironsh}
          - {path: labels.1, in: [docs, 5, true]}
          - {path: title, matches: "^safe-"}
)";

boost::json::value args(const char* text) { return boost::json::parse(text); }

TEST(McpPolicy, DefaultsAndNoServers) {
    auto p = load(kPolicy);
    EXPECT_EQ(p.error_code, -32001);
    EXPECT_EQ(p.error_message, "blocked by iron-proxy policy");
    auto none = parse_policy(YAML::Load("error: {code: 1}"), "t.yaml");
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
}

TEST(McpPolicy, ToolsAndClauses) {
    auto p = load(kPolicy);
    const server& s = p.servers[0];
    EXPECT_EQ(s.refuse("search", nullptr), "");
    EXPECT_EQ(s.refuse("delete", nullptr), reason::tool_not_allowed);
    auto ok = args(R"({"owner":"ironsh","labels":["a","docs"],"title":"safe-x"})");
    EXPECT_EQ(s.refuse("create", &ok), "");
    auto num = args(R"({"owner":"ironsh","labels":["a",5.0],"title":"safe-x"})");
    EXPECT_EQ(s.refuse("create", &num), "");
    auto str = args(R"({"owner":"ironsh","labels":["a","5"],"title":"safe-x"})");
    EXPECT_EQ(s.refuse("create", &str), reason::argument_constraint);
    auto boolean = args(R"({"owner":"ironsh","labels":["a",true],"title":"safe-x"})");
    EXPECT_EQ(s.refuse("create", &boolean), "");
    auto unsafe = args(R"({"owner":"ironsh","labels":["a","docs"],"title":"x-safe-"})");
    EXPECT_EQ(s.refuse("create", &unsafe), reason::argument_constraint);
    EXPECT_EQ(s.refuse("create", nullptr), reason::argument_constraint);
}

TEST(McpPolicy, QuotedYamlNumbersAreStrings) {
    auto p = load("servers: [{name: s, rules: [{host: x}], tools: [{name: t, when: [{path: n, equals: \"5\"}]}]}]");
    auto five = args(R"({"n":5})"), text = args(R"({"n":"5"})");
    EXPECT_EQ(p.servers[0].refuse("t", &five), reason::argument_constraint);
    EXPECT_EQ(p.servers[0].refuse("t", &text), "");
}

TEST(McpPolicy, Errors) {
    auto bad = [](const std::string& y) {
        auto p = parse_policy(YAML::Load(y), "t.yaml");
        return p ? std::string() : p.message();
    };
    EXPECT_NE(bad("servers: [{name: s, rules: [{host: x}], tools: [{name: t, whn: []}]}]").find("unknown key \"whn\""),
              std::string::npos);
    EXPECT_NE(bad("servers: [{name: s, tools: []}]").find("at least one rule is required"), std::string::npos);
    EXPECT_NE(bad("servers: [{name: s, rules: [{host: x}], tools: [{name: t, when: [{path: a}]}]}]")
                  .find("exactly one of equals, in, matches is required"),
              std::string::npos);
    for (const char* re : {"^(a+)+$", "(x*y)*", "((ab)+c)*", "(\\d+\\.){2,}"})
        EXPECT_NE(bad(std::string("servers: [{name: s, rules: [{host: x}], tools: [{name: t, when: [{path: a, matches: '") +
                      re + "'}]}]}]").find("repeated group"),
                  std::string::npos) << re;
    for (const char* re : {"^(a|b)*c$", "^safe-[a-z]+$", "(ab)+", "[(+]+", "\\(a+\\)+"})
        EXPECT_EQ(bad(std::string("servers: [{name: s, rules: [{host: x}], tools: [{name: t, when: [{path: a, matches: '") +
                      re + "'}]}]}]"), "") << re;
}

TEST(McpJsonRpc, ParseAndDeny) {
    auto one = parse_request(R"({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}})");
    ASSERT_FALSE(one.malformed);
    EXPECT_FALSE(one.batch);
    EXPECT_EQ(one.messages[0].method, "tools/call");
    EXPECT_EQ(tool_call_of(one.messages[0])->name, "x");
    EXPECT_EQ(error_answer(one, -1, "no"), R"({"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}})");
    EXPECT_TRUE(parse_request("[]").malformed);
    EXPECT_TRUE(parse_request("[1]").malformed);
    EXPECT_TRUE(parse_request(R"({"method":1})").malformed);
    EXPECT_TRUE(parse_request(R"({"id":[1]})").malformed);
    auto broken = parse_request("[{");
    EXPECT_TRUE(broken.malformed);
    EXPECT_EQ(error_answer(broken, -1, "no"), R"([{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"no"}}])");
}

TEST(McpJsonRpc, IdKeys) {
    auto a = boost::json::value(1), b = boost::json::value(1.0), c = boost::json::value("1");
    EXPECT_EQ(id_key(&a), id_key(&b));
    EXPECT_NE(id_key(&a), id_key(&c));
    auto n = boost::json::value(nullptr);
    EXPECT_FALSE(id_key(&n));
    EXPECT_FALSE(id_key(nullptr));
}

TEST(McpJsonRpc, RecordedArguments) {
    auto small = args(R"({"a":1})");
    EXPECT_TRUE(record_arguments(&small).json);
    auto big = args(R"({"a":"0123456789012345678901234567890123456789012345678901234567890123456789"})");
    auto r = record_arguments(&big);
    EXPECT_FALSE(r.json);
    EXPECT_EQ(r.raw.size(), 64u);
    EXPECT_EQ(r.raw.substr(61), "...");
}

struct filter_fixture {
    std::shared_ptr<const policy> p = std::make_shared<const policy>(load(kPolicy));
    std::shared_ptr<mcp_record> rec = std::make_shared<mcp_record>("s");
    std::unique_ptr<pipeline::response_filter> make(answer_kind k) {
        rec->tools_list_ids().insert(*id_key(&id));
        return make_answer_filter(k, p, p->servers[0], rec);
    }
    boost::json::value id = boost::json::value(7);
};

TEST(McpFilters, JsonAnswerFilteredAtTheEnd) {
    filter_fixture f;
    auto filter = f.make(answer_kind::json);
    std::string out;
    const std::string body = R"({"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"delete"},{"name":"search"}]}})";
    filter->feed(body.substr(0, 20), out);
    filter->feed(body.substr(20), out);
    EXPECT_EQ(out, "");
    filter->finish(out);
    auto v = boost::json::parse(out);
    ASSERT_EQ(v.at("result").at("tools").as_array().size(), 1u);
    EXPECT_EQ(v.at("result").at("tools").at(0).at("name"), "search");
    audit::record r;
    f.rec->write(r);
    EXPECT_EQ(r.mcp->at("messages").at(0).at("filtered"), 1);
}

TEST(McpFilters, OtherIdsAreLeftAlone) {
    filter_fixture f;
    auto filter = f.make(answer_kind::json);
    std::string out;
    const std::string body = R"({"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"delete"}]}})";
    filter->feed(body, out);
    filter->finish(out);
    EXPECT_EQ(out, body);
}

TEST(McpFilters, EventStreamEventByEvent) {
    filter_fixture f;
    auto filter = f.make(answer_kind::event_stream);
    std::string out;
    filter->feed(": ping\r\n\r\nevent: message\r\nid: 3\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,", out);
    EXPECT_EQ(out, ": ping\r\n\r\n");  // the complete event went at once; the partial one is held
    filter->feed("\"result\":{\"tools\":[{\"name\":\"delete\"},{\"name\":\"search\"}]}}\r", out);
    EXPECT_EQ(out, ": ping\r\n\r\n");
    filter->feed("\n\r\ndata: after\n\n", out);
    EXPECT_NE(out.find("event: message\r\nid: 3\r\ndata: {"), std::string::npos);
    EXPECT_EQ(out.find("delete"), std::string::npos);
    EXPECT_NE(out.find("search"), std::string::npos);
    EXPECT_NE(out.find("data: after\n\n"), std::string::npos);  // every id answered: streamed as is
    filter->finish(out);
}

}  // namespace
}  // namespace iron::mcp
