#pragma once
// IP prefixes: parsing, matching, and the upstream deny list with the classification of upstream
// addresses against it (what an address really reaches: an embedded IPv4, this host).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace iron::core {

// An IP address as 16 bytes; IPv4 is stored as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) with
// is_v4 set, so that mapped addresses from the wire compare equal to plain IPv4 (they are unmapped).
struct ip_address {
    std::array<std::uint8_t, 16> bytes{};
    bool is_v4 = false;

    static std::optional<ip_address> parse(std::string_view text);  // "1.2.3.4", "::1", "[::1]"
    std::string to_string() const;
};

struct cidr {
    ip_address network;  // host bits masked
    int prefix_len = 0;  // 0..32 for v4, 0..128 for v6
    std::string text;    // canonical "a.b.c.d/n" for messages

    // Requires '/' ("must be CIDR notation"); masks host bits ("10.1.2.3/8" == "10.0.0.0/8").
    static result<cidr> parse(std::string_view text);
    bool contains(const ip_address& ip) const;  // v4 prefixes match v4 only, v6 match v6 only
};

// The upstream deny list. first_match() returns the matching prefix text, e.g. "127.0.0.0/8".
class deny_list {
public:
    deny_list() = default;
    explicit deny_list(std::vector<cidr> prefixes) : prefixes_(std::move(prefixes)) {}
    // Entries are trimmed; errors use Go's messages (`empty CIDR entry`, `invalid CIDR "x": …`)
    // prefixed by the caller.
    static result<deny_list> parse(const std::vector<std::string>& entries);
    std::optional<std::string> first_match(const ip_address& ip) const;
    bool empty() const { return prefixes_.empty(); }
    const std::vector<cidr>& prefixes() const { return prefixes_; }

private:
    std::vector<cidr> prefixes_;
};

// The list used when `proxy.upstream_deny_cidrs` is absent: cloud metadata (169.254.169.254, and
// over IPv6 AWS's fd00:ec2::254 and GCP's fd20:ce::254), loopback, and the unspecified addresses (a
// connect to 0.0.0.0 or :: reaches this host). Inline, so the config module uses this one definition
// without linking the rest of core.
inline std::vector<std::string> default_upstream_deny_cidrs() {
    return {"169.254.169.254/32", "fd00:ec2::254/128", "fd20:ce::254/128", "127.0.0.0/8",
            "::1/128",            "0.0.0.0/8",         "::/128"};
}

// An IPv4 address carried inside an IPv6 one by a translation or tunnelling scheme. Packets to the
// IPv6 form can end up at the IPv4 one (a NAT64 gateway, a 6to4 or Teredo relay), so the deny list
// must see it. `scheme` names the layout, for tests and messages.
struct embedded_ipv4 {
    ip_address v4;
    const char* scheme = "";
};

// At most two (Teredo carries its server's and its client's address), in a fixed array so the
// check on every dialed address allocates nothing.
struct embedded_ipv4s {
    std::array<embedded_ipv4, 2> items{};
    int count = 0;
    const embedded_ipv4* begin() const { return items.data(); }
    const embedded_ipv4* end() const { return items.data() + count; }
};

// Pure decoding, always applied whatever the deny list: NAT64 64:ff9b::/96 (last 32 bits), local-use
// NAT64 64:ff9b:1::/48 (RFC 6052 /48 layout: bits 48..63 and 72..87, skipping the u octet),
// 6to4 2002::/16 (bits 16..47), Teredo 2001::/32 (server at bits 32..63, client = last 32 bits
// inverted). IPv4-mapped addresses are not here: they are IPv4 already (see ip_address).
embedded_ipv4s decode_embedded_ipv4(const ip_address& ip);

// 0.0.0.0/8 and ::: as a connect target the kernel makes them a connection to this host.
bool is_unspecified_target(const ip_address& ip);

// Why an upstream address may not be dialed: the deny-list entry it hit and, when that entry did
// not match the address itself, what it matched instead ("embeds 169.254.169.254").
struct upstream_denial {
    std::string prefix;  // "169.254.169.254/32"
    std::string reason;  // "" when the address itself is in the list
    // "<ip> in <prefix>" or "<ip> (<reason>) in <prefix>", for "denied by upstream_deny_cidrs: ...".
    std::string describe(const ip_address& ip) const;
};

// Whether `ip` may not be dialed under `deny`: the address itself, then, if it is an unspecified
// address, what it means (127.0.0.1 and ::1, so a list naming loopback also stops 0.0.0.0), then
// every embedded IPv4 (checked the same way). No I/O. An empty list denies nothing.
std::optional<upstream_denial> check_upstream_address(const deny_list& deny, const ip_address& ip);

}  // namespace iron::core
