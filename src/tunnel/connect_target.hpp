#pragma once
// The pure half of the tunnel listener's handshake (no I/O, so tables and fuzzers can test it):
// which protocol the first byte announces, and the CONNECT request-target.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace iron::tunnel {

// The largest CONNECT request head read from a client.
inline constexpr std::uint32_t max_connect_head_bytes = 64 * 1024;

// One byte tells a SOCKS5 greeting (version 0x05) from an HTTP CONNECT head.
enum class handshake_protocol { socks5, http_connect };
handshake_protocol detect_handshake(unsigned char first_byte);

struct connect_target {
    std::string host;       // normalised, no brackets: what policy matches
    std::string authority;  // "host:port" as audited (IPv6 bracketed)
};

// CONNECT's request-target is authority-form ("host:port", "[v6]:port"); a missing port means
// 443. nullopt for anything else (a path, userinfo, an empty host, a port that is not decimal
// digits for 1..65535).
std::optional<connect_target> parse_connect_target(std::string_view target);

// Whether `head` (the bytes read so far) opens with a forward-proxy request for a plain-HTTP URL,
// `METHOD http://host/… HTTP/1.x` with a method other than CONNECT: what a client configured
// with HTTP_PROXY sends. Such a connection is served as on the plain listener (allowlist,
// transforms, audit), so one port serves both HTTP_PROXY and HTTPS_PROXY; any other
// non-CONNECT request line is still answered 405. False until the request line is complete.
bool is_absolute_http_request(std::string_view head);

}  // namespace iron::tunnel
