#include "tunnel/connect_target.hpp"

#include "core/host_glob.hpp"
#include "core/port.hpp"
#include "tunnel/socks5.hpp"

namespace iron::tunnel {

handshake_protocol detect_handshake(unsigned char first_byte) {
    return first_byte == socks5::version ? handshake_protocol::socks5 : handshake_protocol::http_connect;
}

namespace {

// RFC 3986 reg-name and IP-literal characters (unreserved, pct-encoded, ':' inside brackets), and
// no empty label: anything else ("[:" never closed, high bytes, "a..") is no host any peer would
// read as policy does (the fuzzer found "[:\xff…ed.." accepted, with a host that normalised
// differently twice).
bool is_plain_host(std::string_view host) {
    if (host.find("..") != std::string_view::npos) return false;
    for (char c : host) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '.' || c == '_' || c == '~' || c == '%' || c == ':';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

std::optional<connect_target> parse_connect_target(std::string_view target) {
    if (target.empty() || target.find('/') != std::string_view::npos || target.find('@') != std::string_view::npos)
        return std::nullopt;
    if (target.front() == '[') {
        // An IP-literal is "[…]" then nothing or ":port" (split_host_port ignores what else follows).
        const auto close = target.find(']');
        if (close == std::string_view::npos || (close + 1 < target.size() && target[close + 1] != ':'))
            return std::nullopt;
    }
    auto hp = core::split_host_port(target);
    if (hp.host.empty() || !is_plain_host(hp.host)) return std::nullopt;
    if (hp.port.empty()) hp.port = "443";
    // Decimal digits only, as for a Host port (strtol took "+443", which was then audited as is).
    if (!core::parse_port(hp.port)) return std::nullopt;
    connect_target out;
    out.host = core::normalize_host(hp.host);
    if (out.host.empty()) return std::nullopt;  // "." alone names no host (found by the fuzz smoke)
    bool v6 = hp.host.find(':') != std::string::npos;
    out.authority = (v6 ? "[" + hp.host + "]" : hp.host) + ":" + hp.port;
    return out;
}

bool is_absolute_http_request(std::string_view head) {
    const auto eol = head.find('\n');
    if (eol == std::string_view::npos) return false;
    const std::string_view line = head.substr(0, eol);
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) == "CONNECT") return false;
    constexpr std::string_view scheme = "http://";
    const std::string_view rest = line.substr(sp + 1);
    const std::string_view target = rest.substr(0, rest.find(' '));
    if (target.size() <= scheme.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        const char c = target[i];
        const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (lower != scheme[i]) return false;
    }
    return true;
}

}  // namespace iron::tunnel
