#include "net/dialer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto keepalive_period = std::chrono::seconds(30);  // TCP keep-alive, Go's default
constexpr auto min_attempt = std::chrono::seconds(2);        // Go's saneMinimum per address

// "1.2.3.4:80" / "[::1]:80", as Go's net.JoinHostPort writes them in "dial tcp ..." errors.
std::string endpoint_text(const tcp::endpoint& ep) {
    std::string ip = ep.address().to_string();
    std::string port = std::to_string(ep.port());
    return ep.address().is_v6() ? "[" + ip + "]:" + port : ip + ":" + port;
}

core::ip_address to_core(const asio::ip::address& a) {
    // Through the bytes, in core's representation (IPv4 as ::ffff:a.b.c.d with is_v4 set), so a
    // v4 prefix can only match a v4 address and vice versa.
    core::ip_address out;
    if (a.is_v4()) {
        auto b = a.to_v4().to_bytes();
        out.bytes[10] = 0xff;
        out.bytes[11] = 0xff;
        std::copy(b.begin(), b.end(), out.bytes.begin() + 12);
        out.is_v4 = true;
    } else {
        auto b = a.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), out.bytes.begin());
        out.is_v4 = a.to_v6().is_v4_mapped();  // unreachable after unmap(), kept for safety
    }
    return out;
}

std::string os_message(const boost::system::error_code& ec) {
    std::string m = ec.message();  // "Connection refused" -> "connection refused", like Go
    if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
    return m;
}

void tune(tcp::socket& s) {
    // Failures here are not worth failing a connected dial over.
    boost::system::error_code ec;
    s.set_option(tcp::no_delay(true), ec);
    s.set_option(asio::socket_base::keep_alive(true), ec);
    int secs = static_cast<int>(keepalive_period.count());
    ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
    ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof secs);
}

// Why a connect failed, as far as the client's Proxy-Status can tell it apart.
error_kind connect_error_kind(const boost::system::error_code& ec) {
    if (ec == asio::error::connection_refused) return error_kind::connect_refused;
    if (ec == asio::error::timed_out) return error_kind::connect_timeout;
    if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable) return error_kind::unreachable;
    return error_kind::other;
}

// One connect attempt to an already-checked endpoint, bounded by `timeout`.
asio::awaitable<result<tcp::socket>> connect_one(tcp::endpoint ep, steady::duration timeout) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    tcp::socket sock(ex);
    boost::system::error_code ec;
    sock.open(ep.protocol(), ec);
    if (ec) co_return make_error("dial tcp " + endpoint_text(ep) + ": socket: " + os_message(ec));
    asio::steady_timer timer(ex, timeout);
    // The loser is cancelled by the parallel group (async_connect supports per-op cancellation).
    auto won = co_await (sock.async_connect(ep, asio::as_tuple(asio::use_awaitable)) ||
                         timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (won.index() == 1) co_return make_error(error_kind::connect_timeout, "dial tcp " + endpoint_text(ep) + ": i/o timeout");
    auto [cec] = std::get<0>(won);
    if (cec) co_return make_error(connect_error_kind(cec), "dial tcp " + endpoint_text(ep) + ": connect: " + os_message(cec));
    co_return std::move(sock);
}

}  // namespace

asio::ip::address unmap(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

std::optional<core::upstream_denial> denied_by(const core::deny_list& deny, const asio::ip::address& a) {
    if (deny.empty()) return std::nullopt;
    return core::check_upstream_address(deny, to_core(unmap(a)));
}

dialer::dialer(resolver& r, const core::deny_list& deny, std::chrono::milliseconds connect_timeout,
               const loop_guard* loops)
    : resolver_(r), deny_(deny), connect_timeout_(connect_timeout), loops_(loops) {}

asio::awaitable<result<dial_result>> dialer::dial(std::string host, std::uint16_t port) {
    co_return co_await dial_checked(std::move(host), port, true);
}

asio::awaitable<result<dial_result>> dialer::dial_operator(std::string host, std::uint16_t port) {
    co_return co_await dial_checked(std::move(host), port, false);
}

asio::awaitable<result<std::vector<asio::ip::address>>> dialer::screen(std::string host, std::uint16_t port,
                                                                      std::chrono::milliseconds lookup_timeout) {
    auto addrs = co_await resolver_.resolve(host, std::min(lookup_timeout, connect_timeout_));
    if (!addrs) co_return addrs.err();
    std::vector<asio::ip::address> out;
    for (const auto& a : *addrs) {
        tcp::endpoint ep(unmap(a), port);
        if (auto denial = denied_by(deny_, ep.address()))
            co_return make_error(error_kind::address_denied, "dial tcp " + endpoint_text(ep) + ": denied by upstream_deny_cidrs: " +
                                                                 denial->describe(to_core(ep.address())));
        out.push_back(ep.address());
    }
    if (out.empty()) co_return make_error(error_kind::dns_no_address, "lookup " + host + ": no such host");
    co_return out;
}

asio::awaitable<result<dial_result>> dialer::dial_checked(std::string host, std::uint16_t port, bool check_deny) {
    const auto deadline = steady::now() + connect_timeout_;
    auto addrs = co_await resolver_.resolve(host, connect_timeout_);
    if (!addrs) co_return make_error(addrs.err().kind, "dial tcp: " + addrs.message());

    // Check first, then connect to these very endpoint objects: nothing is resolved again after
    // the check (the DNS-rebinding / TOCTOU defence).
    std::vector<tcp::endpoint> allowed;
    std::string first_denial;
    for (const auto& a : *addrs) {
        tcp::endpoint ep(unmap(a), port);
        if (auto denial = check_deny ? denied_by(deny_, ep.address()) : std::nullopt) {
            if (first_denial.empty())
                first_denial = "dial tcp " + endpoint_text(ep) + ": denied by upstream_deny_cidrs: " +
                               denial->describe(to_core(ep.address()));
            continue;
        }
        allowed.push_back(ep);
    }
    if (allowed.empty()) {
        if (!first_denial.empty()) co_return make_error(error_kind::address_denied, std::move(first_denial));
        co_return make_error(error_kind::dns_no_address, "dial tcp: lookup " + host + ": no such host");
    }

    std::string loop_error;
    error last_error;
    for (std::size_t i = 0; i < allowed.size(); ++i) {
        if (auto self = loops_ ? loops_->check(allowed[i]) : std::nullopt) {
            if (loop_error.empty()) loop_error = std::move(*self);
            continue;
        }
        auto remaining = deadline - steady::now();
        if (remaining <= steady::duration::zero()) {
            if (last_error.message.empty())
                last_error = make_error(error_kind::connect_timeout, "dial tcp " + endpoint_text(allowed[i]) + ": i/o timeout");
            break;
        }
        // Share what is left among the addresses still to try, so one black-holed address cannot
        // eat the whole budget (Go's partialDeadline).
        auto share = remaining / static_cast<long>(allowed.size() - i);
        auto attempt = std::max<steady::duration>(share, std::min<steady::duration>(min_attempt, remaining));
        auto sock = co_await connect_one(allowed[i], attempt);
        if (sock) {
            tune(*sock);
            co_return dial_result{std::move(*sock), allowed[i]};
        }
        last_error = sock.err();
    }
    if (!loop_error.empty()) co_return make_error(error_kind::loop_detected, std::move(loop_error));
    co_return std::move(last_error);
}

}  // namespace iron::net
