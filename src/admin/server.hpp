#pragma once
// The small plain-HTTP/1.1 server behind metrics.listen (/healthz, /readyz, /metrics) and
// management.listen (/v1/reload, ...). It runs on its own thread and io_context, so nothing it
// does (a slow scrape, a reload building a pipeline, a hostile client) touches proxy traffic.
//
// Bad input is bounded: request heads of at most 8 KiB, bodies of at most 64 KiB, 10 s to send a
// request, at most 64 connections at once (more are closed on accept), keep-alive honoured.
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/result.hpp"

namespace iron::admin {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;
// Called on the server's thread, one request at a time per server.
using handler = std::function<response(const request&)>;

// A response with `body` and Content-Type; Content-Length is set when it is written.
response make_response(unsigned status, std::string body, const char* content_type);
// Go's default 404 for unrouted paths: "404 page not found\n", text/plain.
response not_found();

class server {
public:
    // Binds `listen` (Go syntax, ":9090") without SO_REUSEPORT, so a second process on the same
    // port fails here instead of silently sharing it, then starts serving on a new thread.
    // Errors: "listen tcp <addr>: bind: <reason>".
    static result<std::unique_ptr<server>> start(const std::string& listen, handler h);
    ~server();  // stop()
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // The bound address, "ip:port" (port 0 resolved).
    const std::string& address() const { return address_; }
    // Closes the listener and every connection, then joins the thread. Idempotent.
    void stop();

    struct impl;

private:
    explicit server(std::unique_ptr<impl> i);
    std::unique_ptr<impl> impl_;
    std::string address_;
    std::thread thread_;
};

}  // namespace iron::admin
