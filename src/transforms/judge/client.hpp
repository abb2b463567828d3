#pragma once
// The judge's own HTTP/1.1 client to the model API: one connection per call (plain or TLS,
// verified against the system store; SSL_CERT_FILE honoured), a whole-call deadline, everything
// asynchronous on the calling worker's executor so the worker keeps serving while the model
// thinks. The endpoint is the operator's, so it is dialled directly (no upstream_deny_cidrs) — and
// only by this client: nothing here is reachable by a workload's request through the proxy.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/result.hpp"
#include "transforms/judge/provider.hpp"

namespace iron::transforms::judge {

// An http:// or https:// URL with a host, an optional port and an optional path prefix (trailing
// slashes dropped); no query or fragment.
struct base_url {
    bool tls = true;
    std::string host;  // without brackets
    std::uint16_t port = 443;
    std::string prefix;  // "" or "/something"
};
result<base_url> parse_base_url(std::string_view text);

struct http_reply {
    int status = 0;
    std::string body;
};

class llm_client {
public:
    static constexpr std::size_t max_reply_bytes = 1 << 20;

    static result<std::unique_ptr<llm_client>> create(base_url url);

    // POSTs the call; errors say what failed ("dial tcp …", "tls handshake …", "timeout after 8s",
    // "reading response: …") and never carry the call's headers.
    boost::asio::awaitable<result<http_reply>> post(const provider_call& call, std::chrono::nanoseconds timeout) const;

    const base_url& url() const { return url_; }

private:
    llm_client(base_url url, std::unique_ptr<boost::asio::ssl::context> tls) : url_(std::move(url)), tls_(std::move(tls)) {}
    std::string request_bytes(const provider_call& call) const;

    base_url url_;
    std::unique_ptr<boost::asio::ssl::context> tls_;  // null for http://
};

}  // namespace iron::transforms::judge
