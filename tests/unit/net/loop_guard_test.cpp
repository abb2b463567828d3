// net::loop_guard: which dial targets are the proxy's own listeners.
#include "net/loop_guard.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace iron::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

tcp::endpoint ep(const char* ip, unsigned short port) { return {asio::ip::make_address(ip), port}; }

TEST(ListenerReached, Table) {
    const std::vector<own_listener> listeners = {
        {"http", ep("127.0.0.1", 8080)},
        {"https", ep("0.0.0.0", 8443)},
        {"tunnel", ep("::", 8888)},
        {"metrics", ep("::1", 9090)},
        {"management", ep("10.1.2.3", 9091)},
    };
    const std::vector<asio::ip::address> local = {asio::ip::make_address("10.1.2.3"),
                                                  asio::ip::make_address("fd00::2")};
    struct row {
        const char* ip;
        unsigned short port;
        const char* want;  // listener name or "" for none
    };
    const std::vector<row> rows = {
        // Bound to one address: that address only (0.0.0.0 and :: are what the kernel makes them).
        {"127.0.0.1", 8080, "http"},
        {"::ffff:127.0.0.1", 8080, "http"},
        {"0.0.0.0", 8080, "http"},
        {"127.0.0.2", 8080, ""},
        {"::1", 8080, ""},
        {"127.0.0.1", 8081, ""},
        {"::1", 9090, "metrics"},
        {"::", 9090, "metrics"},
        {"127.0.0.1", 9090, ""},
        {"10.1.2.3", 9091, "management"},
        {"127.0.0.1", 9091, ""},
        // 0.0.0.0: every IPv4 address of this host, not IPv6, not other hosts.
        {"127.0.0.1", 8443, "https"},
        {"127.200.0.1", 8443, "https"},
        {"10.1.2.3", 8443, "https"},
        {"0.0.0.0", 8443, "https"},
        {"::1", 8443, ""},
        {"10.1.2.4", 8443, ""},
        {"93.184.216.34", 8443, ""},
        // :: (dual-stack): this host in either family.
        {"::1", 8888, "tunnel"},
        {"::", 8888, "tunnel"},
        {"fd00::2", 8888, "tunnel"},
        {"127.0.0.1", 8888, "tunnel"},
        {"10.1.2.3", 8888, "tunnel"},
        {"fd00::3", 8888, ""},
        {"2001:db8::1", 8888, ""},
    };
    for (const auto& r : rows) {
        const own_listener* hit = listener_reached(listeners, ep(r.ip, r.port), local);
        EXPECT_EQ(hit ? hit->name : std::string(), r.want) << r.ip << " port " << r.port;
    }
}

TEST(LoopGuard, MessageNamesAddressAndListener) {
    loop_guard g;
    g.add("http", ep("127.0.0.1", 8080));
    g.add("tunnel", ep("::", 8888));
    EXPECT_EQ(g.check(ep("127.0.0.1", 8080)).value_or(""), "loop detected: 127.0.0.1:8080 is this proxy's http listener");
    EXPECT_EQ(g.check(ep("::1", 8888)).value_or(""), "loop detected: [::1]:8888 is this proxy's tunnel listener");
    EXPECT_EQ(g.check(ep("::ffff:127.0.0.1", 8888)).value_or(""),
              "loop detected: 127.0.0.1:8888 is this proxy's tunnel listener");
    EXPECT_FALSE(g.check(ep("127.0.0.1", 8081)));
    EXPECT_FALSE(g.check(ep("192.0.2.200", 8888)));  // TEST-NET: never one of ours
}

TEST(LoopGuard, InterfaceAddressesOfThisHostAreLocal) {
    // Whatever this machine's interfaces are, each is "this host" for a wildcard listener.
    loop_guard g;
    g.add("tunnel", ep("::", 8888));
    for (const auto& a : interface_addresses()) {
        if (a.is_v6() && a.to_v6().is_link_local()) continue;  // needs a scope to be dialed at all
        EXPECT_TRUE(g.check(tcp::endpoint(a, 8888))) << a.to_string();
    }
}

}  // namespace
}  // namespace iron::net
