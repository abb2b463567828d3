#pragma once
// The SOCKS5 handshake as the tunnel listener runs it (tunnel.cpp serve_socks5), minus the socket:
// greeting, method reply, request; each parsed from what has arrived so far, more read while the
// parser needs it, at most socks5::max_handshake_bytes held. Shared by socks5_fuzz.cpp and
// tunnel_connect_fuzz.cpp (which reaches it through the first-byte detection).
#include <string>

#include "core/host_glob.hpp"
#include "fuzz_support.hpp"
#include "tunnel/socks5.hpp"

namespace iron::fuzz {

inline void run_socks5_handshake(peer_bytes& client, std::string& buf) {
    namespace socks5 = iron::tunnel::socks5;
    socks5::greeting g;
    while ((g = socks5::parse_greeting(buf)).state == socks5::status::need_more)
        if (buf.size() > socks5::max_handshake_bytes || !client.read(buf)) return;  // incomplete greeting
    if (g.state == socks5::status::invalid || !g.no_auth_offered) return;
    require(g.consumed >= 3 && g.consumed <= buf.size());
    buf.erase(0, g.consumed);

    socks5::request req;
    while ((req = socks5::parse_request(buf)).state == socks5::status::need_more)
        if (buf.size() > socks5::max_handshake_bytes || !client.read(buf)) return;  // incomplete request
    if (req.state == socks5::status::invalid) return;
    require(req.consumed <= buf.size());
    if (req.reply != socks5::rep::succeeded) {
        if (!req.host.empty()) (void)req.authority();  // audited
        return;
    }
    // Accepted: the target policy sees, and what the tunnel is audited with.
    require(!req.host.empty() && req.port != 0);
    require(req.host.find('\0') == std::string::npos);
    const std::string policy_host = iron::core::normalize_host(req.host);
    const std::string authority = req.authority();
    require(authority.size() > req.host.size());
    buf.erase(0, req.consumed);  // anything left was pipelined behind the handshake: the tunnel's first bytes
    (void)policy_host;
}

}  // namespace iron::fuzz
