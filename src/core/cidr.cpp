#include "core/cidr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>

namespace iron::core {
namespace {

constexpr std::array<std::uint8_t, 12> v4_mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const std::array<std::uint8_t, 16>& b) {
    return std::memcmp(b.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size()) == 0;
}

// Parse an unbracketed literal. IPv4-mapped IPv6 ("::ffff:1.2.3.4") is unmapped to IPv4 so the
// deny list cannot be bypassed by writing a loopback address in its mapped form.
std::optional<ip_address> parse_literal(std::string_view text, bool& was_v6_text) {
    // inet_pton needs a NUL-terminated string; addresses are short, so a small buffer suffices.
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    ip_address out;
    was_v6_text = text.find(':') != std::string_view::npos;
    if (!was_v6_text) {
        in_addr a4{};
        if (inet_pton(AF_INET, buf, &a4) != 1) return std::nullopt;
        std::memcpy(out.bytes.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size());
        std::memcpy(out.bytes.data() + 12, &a4, 4);
        out.is_v4 = true;
        return out;
    }
    in6_addr a6{};
    if (inet_pton(AF_INET6, buf, &a6) != 1) return std::nullopt;
    std::memcpy(out.bytes.data(), &a6, 16);
    out.is_v4 = is_v4_mapped(out.bytes);
    return out;
}

std::string cidr_error(std::string_view text, std::string_view reason) {
    std::string m = "invalid CIDR \"";
    m.append(text);
    m.append("\": ");
    m.append(reason);
    return m;
}

// Does `a` agree with `b` on the first `bits` bits (counted from byte `offset`)?
bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, int bits) {
    int full = bits / 8;
    if (std::memcmp(a, b, static_cast<std::size_t>(full)) != 0) return false;
    int rem = bits % 8;
    if (rem == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xFF << (8 - rem));
    return (a[full] & mask) == (b[full] & mask);
}

void mask_bits(std::uint8_t* p, int total_bits, int keep) {
    for (int i = 0; i < total_bits / 8; ++i) {
        int bit_start = i * 8;
        if (keep >= bit_start + 8) continue;
        if (keep <= bit_start) {
            p[i] = 0;
        } else {
            p[i] &= static_cast<std::uint8_t>(0xFF << (8 - (keep - bit_start)));
        }
    }
}

std::string_view trim(std::string_view s) {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

std::optional<ip_address> ip_address::parse(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    bool v6_text = false;
    return parse_literal(text, v6_text);
}

std::string ip_address::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    if (is_v4) {
        if (inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf) == nullptr) return {};
    } else {
        if (inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf) == nullptr) return {};
    }
    return buf;
}

result<cidr> cidr::parse(std::string_view text) {
    if (text.empty()) return make_error("empty CIDR entry");
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return make_error(cidr_error(text, "must be CIDR notation, e.g. 1.2.3.4/32 or ::1/128"));
    }
    std::string_view addr_text = text.substr(0, slash);
    std::string_view bits_text = text.substr(slash + 1);

    bool v6_text = false;
    auto addr = parse_literal(addr_text, v6_text);
    if (!addr) return make_error(cidr_error(text, "invalid IP address \"" + std::string(addr_text) + "\""));

    // Prefix length: decimal digits, no sign, no leading zeros (as Go's netip.ParsePrefix).
    bool bits_ok = !bits_text.empty() && bits_text.size() <= 3 && !(bits_text.size() > 1 && bits_text[0] == '0');
    int bits = 0;
    for (char c : bits_text) {
        if (c < '0' || c > '9') {
            bits_ok = false;
            break;
        }
        bits = bits * 10 + (c - '0');
    }
    int max_bits = v6_text ? 128 : 32;
    if (!bits_ok || bits > max_bits) {
        return make_error(cidr_error(text, "invalid prefix length \"" + std::string(bits_text) + "\""));
    }

    cidr out;
    out.network = *addr;
    if (v6_text && addr->is_v4) {
        // A mapped prefix ("::ffff:127.0.0.0/104") becomes the equivalent IPv4 prefix, because
        // addresses are unmapped before matching. Shorter prefixes cover more than IPv4 space and
        // stay IPv6 (they then match IPv6 addresses only, like Go's netip).
        if (bits >= 96) {
            bits -= 96;
        } else {
            out.network.is_v4 = false;
        }
    }
    out.prefix_len = bits;
    if (out.network.is_v4) {
        mask_bits(out.network.bytes.data() + 12, 32, bits);
    } else {
        mask_bits(out.network.bytes.data(), 128, bits);
    }
    out.text = out.network.to_string() + "/" + std::to_string(bits);
    return out;
}

bool cidr::contains(const ip_address& ip) const {
    if (ip.is_v4 != network.is_v4) return false;
    if (ip.is_v4) return prefix_equal(ip.bytes.data() + 12, network.bytes.data() + 12, prefix_len);
    return prefix_equal(ip.bytes.data(), network.bytes.data(), prefix_len);
}

result<deny_list> deny_list::parse(const std::vector<std::string>& entries) {
    static constexpr std::string_view prefix = "proxy.upstream_deny_cidrs: ";
    std::vector<cidr> out;
    out.reserve(entries.size());
    for (const auto& e : entries) {
        auto c = cidr::parse(trim(e));
        if (!c) return make_error(std::string(prefix) + c.message());
        out.push_back(std::move(c).value());
    }
    return deny_list(std::move(out));
}

std::optional<std::string> deny_list::first_match(const ip_address& ip) const {
    for (const auto& p : prefixes_) {
        if (p.contains(ip)) return p.text;
    }
    return std::nullopt;
}

namespace {

ip_address v4_from(const std::uint8_t* four, std::uint8_t invert = 0) {
    ip_address out;
    std::memcpy(out.bytes.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size());
    for (int i = 0; i < 4; ++i) out.bytes[12 + i] = static_cast<std::uint8_t>(four[i] ^ invert);
    out.is_v4 = true;
    return out;
}

bool starts_with(const std::array<std::uint8_t, 16>& b, std::initializer_list<std::uint8_t> prefix) {
    return std::equal(prefix.begin(), prefix.end(), b.begin());
}

const ip_address& v4_loopback() {
    static const ip_address a = *ip_address::parse("127.0.0.1");
    return a;
}

const ip_address& v6_loopback() {
    static const ip_address a = *ip_address::parse("::1");
    return a;
}

// The address itself, then what an unspecified address means; no embedding (an embedded IPv4
// embeds nothing further).
std::optional<upstream_denial> check_plain(const deny_list& deny, const ip_address& ip) {
    if (auto p = deny.first_match(ip)) return upstream_denial{std::move(*p), ""};
    if (!is_unspecified_target(ip)) return std::nullopt;
    for (const ip_address* meant : {&v4_loopback(), &v6_loopback()}) {
        if (auto p = deny.first_match(*meant)) return upstream_denial{std::move(*p), "this host, as " + meant->to_string()};
    }
    return std::nullopt;
}

}  // namespace

embedded_ipv4s decode_embedded_ipv4(const ip_address& ip) {
    embedded_ipv4s out;
    if (ip.is_v4) return out;
    const auto& b = ip.bytes;
    auto add = [&out](ip_address v4, const char* scheme) { out.items[out.count++] = embedded_ipv4{v4, scheme}; };
    if (starts_with(b, {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0})) {
        add(v4_from(&b[12]), "NAT64");
    } else if (starts_with(b, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) {
        const std::uint8_t octets[4] = {b[6], b[7], b[9], b[10]};  // b[8] is the u octet
        add(v4_from(octets), "local-use NAT64");
    } else if (starts_with(b, {0x20, 0x02})) {
        add(v4_from(&b[2]), "6to4");
    } else if (starts_with(b, {0x20, 0x01, 0x00, 0x00})) {
        add(v4_from(&b[4]), "Teredo server");
        add(v4_from(&b[12], 0xff), "Teredo client");
    }
    return out;
}

bool is_unspecified_target(const ip_address& ip) {
    if (ip.is_v4) return ip.bytes[12] == 0;  // 0.0.0.0/8
    return std::all_of(ip.bytes.begin(), ip.bytes.end(), [](std::uint8_t x) { return x == 0; });
}

std::string upstream_denial::describe(const ip_address& ip) const {
    std::string out = ip.to_string();
    if (!reason.empty()) out += " (" + reason + ")";
    return out + " in " + prefix;
}

std::optional<upstream_denial> check_upstream_address(const deny_list& deny, const ip_address& ip) {
    if (deny.empty()) return std::nullopt;
    if (auto d = check_plain(deny, ip)) return d;
    for (const auto& e : decode_embedded_ipv4(ip)) {
        if (auto d = check_plain(deny, e.v4)) {
            std::string how = "embeds " + e.v4.to_string();
            if (!d->reason.empty()) how += ": " + d->reason;
            return upstream_denial{std::move(d->prefix), std::move(how)};
        }
    }
    return std::nullopt;
}

}  // namespace iron::core
