#pragma once
// SOCKS5 wire format (RFC 1928, no-auth CONNECT only; unlike Go, the method rejection is the
// RFC's 2-byte reply).
// Pure functions over bytes so tables and fuzzers can test them.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace iron::tunnel::socks5 {

inline constexpr std::uint8_t version = 0x05;
// The tunnel listener stops waiting for a complete greeting or request once it holds more than
// this many bytes.
inline constexpr std::size_t max_handshake_bytes = 1024;

enum class status { need_more, ok, invalid };

// Reply codes (RFC 1928 §6).
namespace rep {
inline constexpr std::uint8_t succeeded = 0x00;
inline constexpr std::uint8_t general_failure = 0x01;
inline constexpr std::uint8_t not_allowed = 0x02;
inline constexpr std::uint8_t command_not_supported = 0x07;
inline constexpr std::uint8_t address_type_not_supported = 0x08;
}  // namespace rep

struct greeting {
    status state = status::need_more;
    bool no_auth_offered = false;
    std::size_t consumed = 0;
};
// VER NMETHODS METHODS...
greeting parse_greeting(std::string_view bytes);

struct request {
    status state = status::need_more;
    std::uint8_t reply = rep::succeeded;  // when a well-formed request must be refused (cmd/atyp)
    std::string host;                      // IPv4/IPv6 text or the domain name as sent
    std::uint16_t port = 0;
    bool is_ipv6 = false;
    std::size_t consumed = 0;
    std::string authority() const { return (is_ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port); }
};
// VER CMD RSV ATYP DST.ADDR DST.PORT
request parse_request(std::string_view bytes);

// The 2-byte method selection reply ("05 00" or "05 FF").
std::array<std::uint8_t, 2> method_reply(bool accept);
// A 10-byte reply with BND.ADDR 0.0.0.0:0.
std::array<std::uint8_t, 10> reply(std::uint8_t code);

}  // namespace iron::tunnel::socks5
