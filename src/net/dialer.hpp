#pragma once
// Upstream dials: resolve, check every address against `upstream_deny_cidrs`, connect
// (README.md, "Upstream address checks"). Security invariant: the address checked is exactly the
// endpoint connected to; there is no second lookup between the check and the connect.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/cidr.hpp"
#include "core/result.hpp"
#include "net/loop_guard.hpp"
#include "net/resolver.hpp"

namespace iron::net {

struct dial_result {
    boost::asio::ip::tcp::socket socket;  // connected, TCP_NODELAY, keep-alive 30 s
    boost::asio::ip::tcp::endpoint peer;  // the checked address actually connected to
};

// Pure policy, exposed for tests and for callers that hold a literal address already:
// the unmapped address ("::ffff:1.2.3.4" -> 1.2.3.4) and, if denied, why
// (core::check_upstream_address: the address, what an unspecified one means, embedded IPv4s).
boost::asio::ip::address unmap(const boost::asio::ip::address& a);
std::optional<core::upstream_denial> denied_by(const core::deny_list& deny, const boost::asio::ip::address& a);

class dialer {
public:
    // One per worker, next to that worker's resolver (which must outlive it). The deny list is
    // copied: it is small, fixed for the process (reload does not change it) and this way
    // cannot dangle. `loops` (shared by all workers, outliving them; null = no loop check) knows
    // the proxy's own listeners.
    dialer(resolver& r, const core::deny_list& deny, std::chrono::milliseconds connect_timeout,
           const loop_guard* loops = nullptr);

    // Resolves `host` (an IP literal skips DNS), then for each address in order: unmap IPv4-mapped
    // IPv6, check the deny list (a hit is remembered and that address skipped), check it is not
    // one of the proxy's own listeners (likewise), connect (failure or timeout => next address). `connect_timeout` bounds the whole dial, lookup included, and is
    // shared among the allowed addresses like Go's dialer (each gets remaining/left, at least 2 s).
    // Errors when nothing connected:
    //   every address denied => "dial tcp <ip>:<port>: denied by upstream_deny_cidrs: <ip> in <prefix>"
    //                           (the first denied address; "<ip> (embeds <v4>) in <prefix>" when
    //                           what matched is an IPv4 address the IPv6 one carries);
    //   an allowed address was the proxy's own listener => error_kind::loop_detected,
    //        "loop detected: <ip>:<port> is this proxy's <name> listener" (before connect errors:
    //        it is the misconfiguration to report);
    //   else the last connect error "dial tcp <ip>:<port>: connect: connection refused" /
    //        "dial tcp <ip>:<port>: i/o timeout";
    //   lookup failure => "dial tcp: lookup <host>: <reason>".
    boost::asio::awaitable<result<dial_result>> dial(std::string host, std::uint16_t port);

    // A dial to an endpoint the operator configured (a parent proxy): as dial(), loop guard
    // included, but exempt from the deny list, like the proxy's other operator endpoints.
    boost::asio::awaitable<result<dial_result>> dial_operator(std::string host, std::uint16_t port);

    // For a connection a parent proxy makes on our behalf: resolves `host` and checks every address
    // against the deny list, without connecting. Any denied address fails it (the parent may pick
    // any of them): "denied by upstream_deny_cidrs: <ip> in <prefix>" (error_kind::address_denied).
    // A lookup failure is returned as the resolver's error (its dns_* kind): the caller decides.
    // `lookup_timeout` bounds the lookup (at most the connect timeout).
    boost::asio::awaitable<result<std::vector<boost::asio::ip::address>>> screen(
        std::string host, std::uint16_t port, std::chrono::milliseconds lookup_timeout);

private:
    boost::asio::awaitable<result<dial_result>> dial_checked(std::string host, std::uint16_t port, bool check_deny);

    resolver& resolver_;
    core::deny_list deny_;
    std::chrono::milliseconds connect_timeout_;
    const loop_guard* loops_;
};

}  // namespace iron::net
