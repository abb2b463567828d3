#include "net/loop_guard.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace iron::net {

namespace asio = boost::asio;
using asio::ip::address;
using asio::ip::tcp;

namespace {

constexpr auto refresh_interval = std::chrono::seconds(1);

address unmapped(const address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

// Where a connect to `a` really goes: 0.0.0.0/8 and :: are this host's loopback.
address as_dialed(const address& a) {
    address u = unmapped(a);
    if (u.is_v4() && (u.to_v4().to_uint() >> 24) == 0) return asio::ip::address_v4::loopback();
    if (u.is_v6() && u.to_v6().is_unspecified()) return asio::ip::address_v6::loopback();
    return u;
}

bool is_wildcard(const address& a) { return a.is_unspecified(); }

bool is_this_host(const address& a, const std::vector<address>& local_addresses) {
    if (a.is_loopback()) return true;  // 127.0.0.0/8, ::1
    return std::find(local_addresses.begin(), local_addresses.end(), a) != local_addresses.end();
}

std::string endpoint_text(const address& a, unsigned short port) {
    std::string ip = a.to_string();
    return (a.is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

}  // namespace

const own_listener* listener_reached(const std::vector<own_listener>& listeners, const tcp::endpoint& target,
                                     const std::vector<address>& local_addresses) {
    const address t = as_dialed(target.address());
    for (const auto& l : listeners) {
        if (l.bound.port() != target.port()) continue;
        const address bound = unmapped(l.bound.address());
        if (!is_wildcard(bound)) {
            if (bound == t) return &l;
            continue;
        }
        // 0.0.0.0 accepts IPv4 only; :: accepts both (listeners are opened with IPV6_V6ONLY off).
        if (bound.is_v4() && !t.is_v4()) continue;
        if (is_this_host(t, local_addresses)) return &l;
    }
    return nullptr;
}

std::vector<address> interface_addresses() {
    std::vector<address> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr) continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
            asio::ip::address_v4::bytes_type b;
            std::memcpy(b.data(), &sin->sin_addr, 4);
            out.emplace_back(asio::ip::address_v4(b));
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
            asio::ip::address_v6::bytes_type b;
            std::memcpy(b.data(), &sin6->sin6_addr, 16);
            out.emplace_back(asio::ip::address_v6(b));  // scope dropped: the dial target has none either
        }
    }
    ::freeifaddrs(list);
    return out;
}

void loop_guard::add(std::string name, const tcp::endpoint& bound) {
    listeners_.push_back(own_listener{std::move(name), bound});
}

std::optional<std::string> loop_guard::check(const tcp::endpoint& target) const {
    // The common case, an upstream port none of ours listens on, takes no lock.
    bool wildcard_on_port = false, port_in_use = false;
    for (const auto& l : listeners_) {
        if (l.bound.port() != target.port()) continue;
        port_in_use = true;
        wildcard_on_port = wildcard_on_port || is_wildcard(l.bound.address());
    }
    if (!port_in_use) return std::nullopt;

    std::lock_guard lock(mu_);
    const own_listener* hit = listener_reached(listeners_, target, local_);
    const auto now = std::chrono::steady_clock::now();
    if (!hit && wildcard_on_port && now - refreshed_ >= refresh_interval) {
        // Interfaces come and go (DHCP, containers); a miss may only mean the cache is old.
        local_ = interface_addresses();
        refreshed_ = now;
        hit = listener_reached(listeners_, target, local_);
    }
    if (!hit) return std::nullopt;
    return "loop detected: " + endpoint_text(unmapped(target.address()), target.port()) + " is this proxy's " +
           hit->name + " listener";
}

}  // namespace iron::net
