#pragma once
// The judge's client to the model API: the proxy's outbound HTTP client (outbound/http_client),
// asynchronous on the calling worker's executor so the worker keeps serving while the model
// thinks, with one POST per call.
#include <chrono>
#include <memory>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/result.hpp"
#include "outbound/http_client.hpp"
#include "transforms/judge/provider.hpp"

namespace iron::transforms::judge {

using outbound::base_url;
using outbound::http_reply;

inline result<base_url> parse_base_url(std::string_view text) { return outbound::parse_base_url(text, "base_url"); }

class llm_client {
public:
    static constexpr std::size_t max_reply_bytes = outbound::http_client::max_reply_bytes;

    static result<std::unique_ptr<llm_client>> create(base_url url);

    // POSTs the call; errors say what failed ("dial tcp …", "tls handshake …", "timeout after 8s",
    // "reading response: …") and never carry the call's headers.
    boost::asio::awaitable<result<http_reply>> post(const provider_call& call, std::chrono::nanoseconds timeout) const;

    const base_url& url() const { return http_->url(); }

private:
    explicit llm_client(std::unique_ptr<outbound::http_client> http) : http_(std::move(http)) {}
    std::unique_ptr<outbound::http_client> http_;
};

}  // namespace iron::transforms::judge
