#pragma once
// Asynchronous name resolution (c-ares driven by Asio). Used by every upstream dial (through
// `dns.upstream_resolver` when set, else the system's servers): the dialer resolves here, checks
// each address against the deny CIDRs, and connects to exactly the address it checked.
//
// One instance per io_context (per worker thread). Not thread-safe: create, use and destroy it on
// the thread that runs its io_context, and destroy it before that io_context.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>

#include "core/result.hpp"

namespace iron::net {

class resolver {
public:
    // upstream_resolver: "host:port" with an IP host ("127.0.0.1:5353", "[::1]:53"); a missing port
    // means 53. Empty = the system configuration (/etc/resolv.conf and /etc/hosts, c-ares defaults).
    // Errors: the channel could not be initialised, or the upstream address does not parse.
    static result<std::unique_ptr<resolver>> create(boost::asio::any_io_executor ex,
                                                    const std::string& upstream_resolver);
    ~resolver();
    resolver(const resolver&) = delete;
    resolver& operator=(const resolver&) = delete;

    // All A and AAAA addresses of `host`, IPv4 first, each family in answer order, no duplicates.
    // An IP literal ("1.2.3.4", "::1", "[::1]") is returned as is, without any lookup.
    // Errors: "lookup <host>: no such host", "lookup <host>: timeout" (after `timeout`, which bounds
    // the whole lookup), "lookup <host>: <c-ares message>".
    // If the resolver is destroyed while a lookup is pending, the lookup completes with an error.
    boost::asio::awaitable<result<std::vector<boost::asio::ip::address>>> resolve(
        std::string host, std::chrono::milliseconds timeout);

private:
    struct impl;
    explicit resolver(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace iron::net
