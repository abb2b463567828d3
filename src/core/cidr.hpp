#pragma once
// IP prefixes: parsing, matching and the upstream deny list (reference §4.7).
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
    // Entries are trimmed; errors use the §2.7 messages prefixed by the caller.
    static result<deny_list> parse(const std::vector<std::string>& entries);
    std::optional<std::string> first_match(const ip_address& ip) const;
    bool empty() const { return prefixes_.empty(); }
    const std::vector<cidr>& prefixes() const { return prefixes_; }

private:
    std::vector<cidr> prefixes_;
};

std::vector<std::string> default_upstream_deny_cidrs();

}  // namespace iron::core
