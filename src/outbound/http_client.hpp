#pragma once
// The proxy's own HTTP/1.1 client to endpoints the operator configured (the judge's model API,
// secret stores, token endpoints): one connection per call (plain or TLS, verified against the
// system store; SSL_CERT_FILE honoured), a whole-call deadline. The endpoint is the operator's,
// so it is dialled directly (no upstream_deny_cidrs) — and only by this client: nothing here is
// reachable by a workload's request through the proxy.
//
// send() is asynchronous on the calling coroutine's executor (a worker keeps serving while it
// waits); send_blocking() runs the same call on a private event loop on the calling thread, for
// background threads such as a secret store's fetcher, and can be cut short from another thread.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/headers.hpp"
#include "core/result.hpp"

namespace iron::outbound {

// An http:// or https:// URL with a host, an optional port and an optional path prefix (trailing
// slashes dropped); no query, fragment or user info. `label` names the setting in errors.
struct base_url {
    bool tls = true;
    std::string host;  // without brackets
    std::uint16_t port = 443;
    std::string prefix;  // "" or "/something"

    // The Host header the client sends: the host (bracketed when IPv6), with the port unless it is
    // the scheme's default.
    std::string host_header() const;
};
result<base_url> parse_base_url(std::string_view text, std::string_view label = "base_url");

struct http_request {
    std::string method = "POST";
    std::string target;         // path and query, appended to the URL's prefix
    core::header_list headers;  // may hold credentials: never logged
    std::string body;
};

struct http_reply {
    int status = 0;
    std::string body;
};

// Lets another thread cut a send_blocking() call short (a source being destroyed).
class cancel_handle {
public:
    void cancel();
    bool cancelled() const;

private:
    friend class http_client;
    mutable std::mutex mu_;
    boost::asio::io_context* running_ = nullptr;
    bool cancelled_ = false;
};

class http_client {
public:
    static constexpr std::size_t max_reply_bytes = 1 << 20;

    static result<std::unique_ptr<http_client>> create(base_url url);

    // Errors say what failed ("dial tcp …", "tls handshake …", "timeout after 8s",
    // "reading response: …") and never carry the request's headers or body.
    boost::asio::awaitable<result<http_reply>> send(const http_request& req, std::chrono::nanoseconds timeout) const;
    result<http_reply> send_blocking(const http_request& req, std::chrono::nanoseconds timeout,
                                     cancel_handle* cancel = nullptr) const;

    const base_url& url() const { return url_; }

private:
    http_client(base_url url, std::unique_ptr<boost::asio::ssl::context> tls) : url_(std::move(url)), tls_(std::move(tls)) {}
    std::string request_bytes(const http_request& req) const;

    base_url url_;
    std::unique_ptr<boost::asio::ssl::context> tls_;  // null for http://
};

}  // namespace iron::outbound
