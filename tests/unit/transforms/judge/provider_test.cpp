// The two model wire formats (Anthropic Messages, OpenAI Chat Completions) and the judge's config.
#include "transforms/judge/provider.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "config/yaml_util.hpp"
#include "transforms/judge/client.hpp"
#include "transforms/judge/judge.hpp"

namespace iron::transforms::judge {
namespace {

TEST(JudgeProvider, AnthropicCall) {
    auto call = build_call(provider_kind::anthropic, "claude-x", 128, "sk-test", "SYS", "ENV");
    EXPECT_EQ(call.path, "/v1/messages");
    EXPECT_EQ(call.headers.get("x-api-key"), "sk-test");
    EXPECT_EQ(call.headers.get("anthropic-version"), "2023-06-01");
    EXPECT_FALSE(call.headers.contains("Authorization"));
    auto body = boost::json::parse(call.body).as_object();
    EXPECT_EQ(body["model"], "claude-x");
    EXPECT_EQ(body["max_tokens"], 128);
    EXPECT_EQ(body["system"], "SYS");
    EXPECT_EQ(body["messages"].as_array()[0].as_object().at("role"), "user");
    EXPECT_EQ(body["messages"].as_array()[0].as_object().at("content"), "ENV");
}

TEST(JudgeProvider, OpenAICall) {
    auto call = build_call(provider_kind::openai, "gpt-x", 64, "sk-test", "SYS", "ENV");
    EXPECT_EQ(call.path, "/v1/chat/completions");
    EXPECT_EQ(call.headers.get("Authorization"), "Bearer sk-test");
    auto body = boost::json::parse(call.body).as_object();
    EXPECT_EQ(body["max_completion_tokens"], 64);
    const auto& msgs = body["messages"].as_array();
    EXPECT_EQ(msgs[0].as_object().at("role"), "system");
    EXPECT_EQ(msgs[1].as_object().at("content"), "ENV");
}

TEST(JudgeProvider, AnthropicAnswer) {
    auto a = parse_answer(provider_kind::anthropic, 200,
                          R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x-1",
                              "content":[{"type":"text","text":"{\"decision\":"},{"type":"tool_use"},{"type":"text","text":"\"DENY\"}"}],
                              "stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":5}})");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->text, "{\"decision\":\"DENY\"}");
    EXPECT_EQ(a->model, "claude-x-1");
    EXPECT_EQ(a->input_tokens, 12);
    EXPECT_EQ(a->output_tokens, 5);
}

TEST(JudgeProvider, OpenAIAnswer) {
    auto a = parse_answer(provider_kind::openai, 200,
                          R"({"id":"c1","object":"chat.completion","model":"gpt-x-2","choices":[{"index":0,
                              "message":{"role":"assistant","content":"ALLOW?"},"finish_reason":"stop"}],
                              "usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32}})");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->text, "ALLOW?");
    EXPECT_EQ(a->input_tokens, 30);
    EXPECT_EQ(a->output_tokens, 2);
    EXPECT_FALSE(parse_answer(provider_kind::openai, 200, R"({"choices":[]})"));
}

TEST(JudgeProvider, ErrorStatusAndGarbage) {
    auto e = parse_answer(provider_kind::anthropic, 429, R"({"type":"error","error":{"type":"rate_limit_error"}})");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.message().rfind("anthropic returned 429: {", 0), 0u);
    auto big = parse_answer(provider_kind::openai, 500, std::string(1000, 'x'));
    EXPECT_EQ(big.message(), "openai returned 500: " + std::string(512, 'x') + "...");
    EXPECT_FALSE(parse_answer(provider_kind::openai, 200, "not json"));
}

TEST(JudgeBaseUrl, Parses) {
    auto a = parse_base_url("https://api.anthropic.com");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->tls);
    EXPECT_EQ(a->port, 443);
    auto b = parse_base_url("http://127.0.0.1:8080/proxy/");
    ASSERT_TRUE(b);
    EXPECT_FALSE(b->tls);
    EXPECT_EQ(b->host, "127.0.0.1");
    EXPECT_EQ(b->port, 8080);
    EXPECT_EQ(b->prefix, "/proxy");
    auto c = parse_base_url("http://[::1]:9/");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->host, "::1");
    EXPECT_FALSE(parse_base_url("ftp://x"));
    EXPECT_FALSE(parse_base_url("https://"));
    EXPECT_FALSE(parse_base_url("https://u:p@x"));
    EXPECT_FALSE(parse_base_url("https://x:99999"));
}

result<std::unique_ptr<judge_transform>> build(const std::string& yaml) {
    YAML::Node root = YAML::Load(yaml);
    return judge_transform::from_config(root["config"], config::yaml_ctx{"c.yaml", "transforms[1].config"});
}

const char* good = R"(
config:
  name: path-policy
  prompt: deny everything
  rules: [{host: "127.0.0.1"}]
  provider: {type: anthropic, model: m, api_key_env: IRON_JUDGE_UNIT_KEY}
)";

TEST(JudgeConfig, DefaultsAndKeyFromEnvironment) {
    ::setenv("IRON_JUDGE_UNIT_KEY", "sk-unit", 1);
    auto j = build(good);
    ASSERT_TRUE(j) << j.message();
    const auto& s = (*j)->settings();
    EXPECT_EQ((*j)->name(), "path-policy");
    EXPECT_EQ(s.api_key, "sk-unit");
    EXPECT_EQ(s.timeout, std::chrono::seconds(8));
    EXPECT_EQ(s.max_concurrent, 100);
    EXPECT_EQ(s.max_tokens, 256);
    EXPECT_EQ(s.breaker_failures, 5);
    EXPECT_EQ(s.breaker_cooldown, std::chrono::seconds(10));
    EXPECT_EQ(s.url.host, "api.anthropic.com");
    EXPECT_EQ(s.fallback, fallback_mode::deny);
}

TEST(JudgeConfig, UnsetKeyVariableIsNamed) {
    ::unsetenv("IRON_JUDGE_UNIT_KEY");
    auto j = build(good);
    ASSERT_FALSE(j);
    EXPECT_NE(j.message().find("judge transform \"path-policy\": anthropic provider: env var \"IRON_JUDGE_UNIT_KEY\" is empty"),
              std::string::npos)
        << j.message();
}

TEST(JudgeConfig, Errors) {
    ::setenv("IRON_JUDGE_UNIT_KEY", "sk-unit", 1);
    auto expect_error = [](const std::string& yaml, const std::string& part) {
        auto j = build(yaml);
        ASSERT_FALSE(j) << yaml;
        EXPECT_NE(j.message().find(part), std::string::npos) << j.message();
    };
    expect_error("config: {prompt: p}", "judge transform: name is required");
    expect_error("config: {name: n, rules: [{host: x}]}", "judge transform \"n\": prompt is required");
    expect_error("config: {name: n, prompt: p}", "judge transform \"n\": at least one rule is required");
    expect_error("config: {name: n, prompt: p, rules: [{host: x}], fallback: allow, provider: {type: openai}}",
                 "invalid fallback \"allow\": must be \"deny\" or \"skip\"");
    expect_error("config: {name: n, prompt: p, rules: [{host: x}], provider: {type: gemini}}",
                 "unknown judge provider \"gemini\"");
    expect_error("config: {name: n, prompt: p, rules: [{host: x}], provider: {type: openai}}",
                 "openai provider: model is required");
    expect_error("config: {name: n, prompt: p, rules: [{host: x}], provider: {type: openai, model: m}}",
                 "openai provider: api_key_env is required");
    expect_error("config: {name: n, prompt: p, rules: [{host: x}], timeout: 5, "
                 "provider: {type: openai, model: m, api_key_env: IRON_JUDGE_UNIT_KEY}}",
                 "timeout");
    expect_error("config: {name: n, prompt: p, rules: [{host: x}], bogus: 1, "
                 "provider: {type: openai, model: m, api_key_env: IRON_JUDGE_UNIT_KEY}}",
                 "bogus");
}

TEST(JudgeConfig, ExplicitSettings) {
    ::setenv("IRON_JUDGE_UNIT_KEY", "sk-unit", 1);
    auto j = build(R"(
config:
  name: n
  prompt: p
  fallback: skip
  timeout: 1500ms
  max_concurrent: 2
  circuit_breaker: {consecutive_failures: 3, cooldown: 2s}
  rules: [{host: "*"}]
  provider: {type: openai, model: m, api_key_env: IRON_JUDGE_UNIT_KEY, base_url: "http://127.0.0.1:9/", max_tokens: 64}
)");
    ASSERT_TRUE(j) << j.message();
    const auto& s = (*j)->settings();
    EXPECT_EQ(s.fallback, fallback_mode::skip);
    EXPECT_EQ(s.timeout, std::chrono::milliseconds(1500));
    EXPECT_EQ(s.max_concurrent, 2);
    EXPECT_EQ(s.breaker_failures, 3);
    EXPECT_EQ(s.breaker_cooldown, std::chrono::seconds(2));
    EXPECT_FALSE(s.url.tls);
    EXPECT_EQ(s.max_tokens, 64);
}

}  // namespace
}  // namespace iron::transforms::judge
