#include "net/listener.hpp"

#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "core/port.hpp"

namespace iron::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

result<tcp::endpoint> parse_listen_address(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return make_error("invalid listen address \"" + text + "\": missing port");
    std::string host = text.substr(0, colon);
    std::string port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const auto port = core::parse_port(port_text, core::port_zero::allowed);  // 0 = any free port
    if (!port) return make_error("invalid listen address \"" + text + "\": bad port");
    if (host.empty()) return tcp::endpoint(asio::ip::address_v6::any(), *port);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
        if (host == "localhost") addr = asio::ip::address_v4::loopback();
        else return make_error("invalid listen address \"" + text + "\": host must be an IP address");
    }
    return tcp::endpoint(addr, *port);
}

result<tcp::endpoint> claim_listen_port(const tcp::endpoint& ep, const std::string& text) {
    const int fd = ::socket(ep.address().is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error("listen tcp " + text + ": socket: " + std::strerror(errno));
    int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT is no conflict
    if (ep.address().is_v6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    tcp::endpoint claimed = ep;
    socklen_t len = static_cast<socklen_t>(claimed.capacity());
    const bool bound = ::bind(fd, ep.data(), static_cast<socklen_t>(ep.size())) == 0 &&
                       ::getsockname(fd, claimed.data(), &len) == 0;
    const int err = errno;
    ::close(fd);
    if (!bound) return make_error("listen tcp " + text + ": bind: " + std::strerror(err));
    return claimed;
}

result<tcp::acceptor> open_acceptor(asio::any_io_executor ex, const tcp::endpoint& ep, const std::string& text,
                                    bool transparent) {
    tcp::acceptor acc(ex);
    boost::system::error_code ec;
    auto fail = [&](const char* what) {
        return make_error("listen tcp " + text + ": " + what + ": " + ec.message());
    };
    acc.open(ep.protocol(), ec);
    if (ec) return fail("socket");
    if (ep.address().is_v6()) {
        // ":port" listens on both families, like Go's net.Listen.
        acc.set_option(asio::ip::v6_only(false), ec);
    }
    acc.set_option(asio::socket_base::reuse_address(true), ec);
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux, so setting it once here
    // saves a setsockopt per connection (our writes are whole messages; Nagle only adds delay).
    acc.set_option(tcp::no_delay(true), ec);
    if (ec) return fail("setsockopt TCP_NODELAY");
    int one = 1;
    if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec.assign(errno, boost::system::system_category());
        return fail("setsockopt");
    }
    if (transparent) {
        const int level = ep.address().is_v6() ? SOL_IPV6 : SOL_IP;
        const int name = ep.address().is_v6() ? IPV6_TRANSPARENT : IP_TRANSPARENT;
        if (::setsockopt(acc.native_handle(), level, name, &one, sizeof one) != 0) {
            ec.assign(errno, boost::system::system_category());
            return fail("setsockopt IP_TRANSPARENT (needs CAP_NET_ADMIN)");
        }
    }
    acc.bind(ep, ec);
    if (ec) return fail("bind");
    acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen");
    return acc;
}

std::string original_destination(tcp::socket& sock) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = sock.native_handle();
    // Only NAT'd connections have one. A direct connection (or TPROXY, whose local address we
    // cannot tell from our own here) gets "": a request naming no host is then refused, not
    // sent back to the proxy itself.
    bool ok = ::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len) == 0 ||
              (len = sizeof ss, ::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len) == 0);
    if (!ok) return "";
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], text, sizeof text);
            return std::string(text) + ":" + std::to_string(ntohs(a->sin6_port));
        }
        inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    return "";
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, connection_handler handler) {
    asio::steady_timer pause(co_await asio::this_coro::executor);
    tcp::endpoint peer;
    for (;;) {
        // accept(2) fills in the peer's address: no getpeername per connection.
        auto [ec, sock] = co_await acceptor.async_accept(peer, asio::as_tuple(asio::use_awaitable));
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {
            // Out of descriptors or a connection reset before accept: keep serving others.
            log::warn("accept failed", {{"error", ec.message()}});
            pause.expires_after(std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        handler(std::move(sock), peer);
    }
}

}  // namespace iron::net
