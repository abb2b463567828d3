#pragma once
// Loop detection. An upstream address that is one of this proxy's own listening sockets (a DNS
// record pointing back at the proxy, a wildcard listener on the upstream's port) would make the
// proxy dial itself, and that hop dial itself again, until connections or memory run out. The
// dialer asks here before every connect, on the very address it is about to connect to.
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace iron::net {

struct own_listener {
    std::string name;                      // "http", "https", "tunnel", "metrics", "management", "dns"
    boost::asio::ip::tcp::endpoint bound;  // as bound, port 0 already resolved
};

// Pure: the listener a connect to `target` would reach, or null. A target reaches a listener bound
// to exactly its address, or a wildcard listener (0.0.0.0 for IPv4 targets, :: for both families:
// our IPv6 listeners are dual-stack) on its port when the target is this host: loopback, or one of
// `local_addresses`. Unspecified targets are what the kernel makes of them: 127.0.0.1 / ::1.
const own_listener* listener_reached(const std::vector<own_listener>& listeners,
                                     const boost::asio::ip::tcp::endpoint& target,
                                     const std::vector<boost::asio::ip::address>& local_addresses);

// This host's interface addresses (getifaddrs); empty if that fails.
std::vector<boost::asio::ip::address> interface_addresses();

class loop_guard {
public:
    // Start-up only, before any thread dials: listeners are read without a lock afterwards.
    void add(std::string name, const boost::asio::ip::tcp::endpoint& bound);

    // "loop detected: 127.0.0.1:8080 is this proxy's http listener", or nullopt. Costs a scan of
    // a handful of listeners; the interface addresses (cached) are only looked at when the port is
    // a listener's, and re-read (at most once a second) when an address there is not among them.
    std::optional<std::string> check(const boost::asio::ip::tcp::endpoint& target) const;

    const std::vector<own_listener>& listeners() const { return listeners_; }

private:
    std::vector<own_listener> listeners_;
    mutable std::mutex mu_;  // guards the two below
    mutable std::vector<boost::asio::ip::address> local_;
    mutable std::chrono::steady_clock::time_point refreshed_{};
};

}  // namespace iron::net
