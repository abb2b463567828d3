#include "transforms/judge/provider.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "transforms/body_capture.hpp"
#include "transforms/judge/envelope.hpp"

namespace iron::transforms::judge {
namespace {

const boost::json::value* at_path(const boost::json::value& v, std::string_view a, std::string_view b = {}) {
    const auto* o = v.if_object();
    if (o == nullptr) return nullptr;
    const auto* x = o->if_contains(a);
    if (x == nullptr || b.empty()) return x;
    const auto* xo = x->if_object();
    return xo == nullptr ? nullptr : xo->if_contains(b);
}

std::int64_t int_or_zero(const boost::json::value* v) {
    if (v == nullptr) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    return 0;
}

std::string string_or_empty(const boost::json::value* v) {
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// Anthropic: the text of every "text" content block, in order.
result<model_answer> read_anthropic(const boost::json::value& v) {
    model_answer a;
    if (const auto* content = at_path(v, "content"); content != nullptr && content->is_array()) {
        for (const auto& block : content->get_array()) {
            if (string_or_empty(at_path(block, "type")) == "text") a.text += string_or_empty(at_path(block, "text"));
        }
    }
    a.model = string_or_empty(at_path(v, "model"));
    a.input_tokens = int_or_zero(at_path(v, "usage", "input_tokens"));
    a.output_tokens = int_or_zero(at_path(v, "usage", "output_tokens"));
    return a;
}

// OpenAI: the first choice's message content.
result<model_answer> read_openai(const boost::json::value& v) {
    const auto* choices = at_path(v, "choices");
    if (choices == nullptr || !choices->is_array() || choices->get_array().empty())
        return make_error("openai response contained no choices");
    model_answer a;
    const auto& first = choices->get_array().front();
    if (const auto* msg = at_path(first, "message")) a.text = string_or_empty(at_path(*msg, "content"));
    a.model = string_or_empty(at_path(v, "model"));
    a.input_tokens = int_or_zero(at_path(v, "usage", "prompt_tokens"));
    a.output_tokens = int_or_zero(at_path(v, "usage", "completion_tokens"));
    return a;
}

}  // namespace

std::string_view provider_name(provider_kind k) { return k == provider_kind::anthropic ? "anthropic" : "openai"; }

std::string_view default_base_url(provider_kind k) {
    return k == provider_kind::anthropic ? "https://api.anthropic.com" : "https://api.openai.com";
}

provider_call build_call(provider_kind k, std::string_view model, std::int64_t max_tokens, std::string_view api_key,
                         std::string_view system, std::string_view user) {
    provider_call call;
    boost::json::object body;
    body["model"] = model;
    call.headers.add("Content-Type", "application/json");
    if (k == provider_kind::anthropic) {
        call.path = "/v1/messages";
        body["max_tokens"] = max_tokens;
        body["system"] = system;
        body["messages"] = boost::json::array{boost::json::object{{"role", "user"}, {"content", user}}};
        call.headers.add("x-api-key", std::string(api_key));
        call.headers.add("anthropic-version", "2023-06-01");
    } else {
        call.path = "/v1/chat/completions";
        body["max_completion_tokens"] = max_tokens;
        body["messages"] = boost::json::array{boost::json::object{{"role", "system"}, {"content", system}},
                                              boost::json::object{{"role", "user"}, {"content", user}}};
        call.headers.add("Authorization", "Bearer " + std::string(api_key));
    }
    call.body = boost::json::serialize(body);
    return call;
}

result<model_answer> parse_answer(provider_kind k, int status, std::string_view body) {
    if (status < 200 || status >= 300) {
        std::string snippet = valid_utf8(transforms::utf8_prefix(body, 512));
        if (body.size() > 512) snippet += "...";
        return make_error(std::string(provider_name(k)) + " returned " + std::to_string(status) + ": " + snippet);
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    if (ec || !v.is_object())
        return make_error("unmarshaling " + std::string(provider_name(k)) + " response: " +
                          (ec ? ec.message() : std::string("not a JSON object")));
    return k == provider_kind::anthropic ? read_anthropic(v) : read_openai(v);
}

}  // namespace iron::transforms::judge
