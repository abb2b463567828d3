#include "tunnel/connect_target.hpp"

#include <charconv>

#include "core/host_glob.hpp"
#include "tunnel/socks5.hpp"

namespace iron::tunnel {

handshake_protocol detect_handshake(unsigned char first_byte) {
    return first_byte == socks5::version ? handshake_protocol::socks5 : handshake_protocol::http_connect;
}

std::optional<connect_target> parse_connect_target(std::string_view target) {
    if (target.empty() || target.find('/') != std::string_view::npos || target.find('@') != std::string_view::npos)
        return std::nullopt;
    auto hp = core::split_host_port(target);
    if (hp.host.empty()) return std::nullopt;
    if (hp.port.empty()) hp.port = "443";
    // Decimal digits only, as for a Host port (strtol took "+443", which was then audited as is).
    unsigned port = 0;
    const char* end = hp.port.data() + hp.port.size();
    auto [p, ec] = std::from_chars(hp.port.data(), end, port);
    if (ec != std::errc{} || p != end || port == 0 || port > 65535) return std::nullopt;
    connect_target out;
    out.host = core::normalize_host(hp.host);
    bool v6 = hp.host.find(':') != std::string::npos;
    out.authority = (v6 ? "[" + hp.host + "]" : hp.host) + ":" + hp.port;
    return out;
}

}  // namespace iron::tunnel
