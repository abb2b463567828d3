#include "tunnel/socks5.hpp"

#include <arpa/inet.h>

namespace iron::tunnel::socks5 {

namespace {
std::uint8_t byte_at(std::string_view b, std::size_t i) { return static_cast<std::uint8_t>(b[i]); }
}  // namespace

greeting parse_greeting(std::string_view b) {
    greeting g;
    if (b.size() < 2) return g;
    if (byte_at(b, 0) != version) {
        g.state = status::invalid;
        return g;
    }
    std::size_t n = byte_at(b, 1);
    if (n == 0) {
        g.state = status::invalid;
        return g;
    }
    if (b.size() < 2 + n) return g;
    for (std::size_t i = 0; i < n; ++i)
        if (byte_at(b, 2 + i) == 0x00) g.no_auth_offered = true;
    g.state = status::ok;
    g.consumed = 2 + n;
    return g;
}

request parse_request(std::string_view b) {
    request r;
    if (b.size() < 4) return r;
    if (byte_at(b, 0) != version) {
        r.state = status::invalid;
        return r;
    }
    const std::uint8_t cmd = byte_at(b, 1);
    const std::uint8_t atyp = byte_at(b, 3);
    std::size_t addr_len = 0;
    std::size_t offset = 4;
    switch (atyp) {
        case 0x01: addr_len = 4; break;
        case 0x04: addr_len = 16; break;
        case 0x03:
            if (b.size() < 5) return r;
            addr_len = byte_at(b, 4);
            offset = 5;
            break;
        default:
            // We cannot know the address length, so the request cannot be framed: refuse it.
            r.state = status::ok;
            r.reply = rep::address_type_not_supported;
            r.consumed = b.size();
            return r;
    }
    if (b.size() < offset + addr_len + 2) return r;
    const char* addr = b.data() + offset;
    if (atyp == 0x01 || atyp == 0x04) {
        char text[INET6_ADDRSTRLEN] = {};
        inet_ntop(atyp == 0x01 ? AF_INET : AF_INET6, addr, text, sizeof text);
        r.host = text;
        r.is_ipv6 = atyp == 0x04;
    } else {
        r.host.assign(addr, addr_len);
        if (r.host.empty() || r.host.find('\0') != std::string::npos) {
            r.state = status::ok;
            r.reply = rep::general_failure;
            r.consumed = offset + addr_len + 2;
            return r;
        }
    }
    r.port = static_cast<std::uint16_t>((byte_at(b, offset + addr_len) << 8) | byte_at(b, offset + addr_len + 1));
    r.consumed = offset + addr_len + 2;
    r.state = status::ok;
    if (cmd != 0x01) r.reply = rep::command_not_supported;
    else if (r.port == 0) r.reply = rep::general_failure;
    return r;
}

std::array<std::uint8_t, 2> method_reply(bool accept) { return {version, accept ? std::uint8_t{0x00} : std::uint8_t{0xFF}}; }

std::array<std::uint8_t, 10> reply(std::uint8_t code) { return {version, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0}; }

}  // namespace iron::tunnel::socks5
