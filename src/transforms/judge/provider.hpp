#pragma once
// The two model APIs the judge speaks, as wire formats only (no I/O): Anthropic's Messages API
// (POST /v1/messages, x-api-key, anthropic-version: 2023-06-01) and OpenAI's Chat Completions
// (POST /v1/chat/completions, Authorization: Bearer). Building a call and reading its answer.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/headers.hpp"
#include "core/result.hpp"

namespace iron::transforms::judge {

enum class provider_kind { anthropic, openai };

std::string_view provider_name(provider_kind k);
std::string_view default_base_url(provider_kind k);

struct provider_call {
    std::string path;           // appended to the base URL's path
    core::header_list headers;  // holds the API key: never log it
    std::string body;           // JSON
};

provider_call build_call(provider_kind k, std::string_view model, std::int64_t max_tokens, std::string_view api_key,
                         std::string_view system, std::string_view user);

struct model_answer {
    std::string text;   // the model's output, its text blocks concatenated
    std::string model;  // as the API reported it ("" when absent)
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
};

// A 2xx answer's body, else "<provider> returned <status>: <body, at most 512 bytes>".
result<model_answer> parse_answer(provider_kind k, int status, std::string_view body);

}  // namespace iron::transforms::judge
