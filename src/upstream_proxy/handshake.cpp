#include "upstream_proxy/handshake.hpp"

#include <array>
#include <string>
#include <vector>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "net/await.hpp"
#include "net/watchdog.hpp"

namespace iron::upstream_proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t max_reply_head = 16 * 1024;

// An error about the parent: "upstream proxy <redacted url>: <what>".
error parent_error(const parent& via, error_kind kind, std::string what) {
    return make_error(kind, "upstream proxy " + via.display + ": " + std::move(what));
}

// A failed read or write: the deadline's doing, or the parent closed or reset.
error io_error(const parent& via, const net::watchdog& dog, const boost::system::error_code& ec, const char* while_) {
    if (dog.fired()) return parent_error(via, error_kind::connect_timeout, std::string(while_) + ": timeout");
    return parent_error(via, error_kind::connection_closed, std::string(while_) + ": " + ec.message());
}

std::string bracketed(std::string_view host) {
    return host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host);
}

// RFC 1928 reply codes, as the client's Proxy-Status can name them.
error socks_reply_error(const parent& via, unsigned code) {
    static constexpr const char* names[] = {"succeeded",
                                            "general SOCKS server failure",
                                            "connection not allowed by ruleset",
                                            "network unreachable",
                                            "host unreachable",
                                            "connection refused",
                                            "TTL expired",
                                            "command not supported",
                                            "address type not supported"};
    const std::string what = "SOCKS5 CONNECT failed: " + std::string(code < 9 ? names[code] : "unknown reply") +
                             " (" + std::to_string(code) + ")";
    error_kind kind = error_kind::parent_refused;
    if (code == 3 || code == 4) kind = error_kind::unreachable;
    if (code == 5) kind = error_kind::connect_refused;
    if (code == 6) kind = error_kind::connect_timeout;
    return parent_error(via, kind, what);
}

// Method negotiation and, when the URL has userinfo, RFC 1929 authentication.
asio::awaitable<result<void>> socks5_greet(tcp::socket& sock, const parent& via, const net::watchdog& dog) {
    const bool auth = via.username.has_value();
    std::vector<std::uint8_t> hello = auth ? std::vector<std::uint8_t>{5, 2, 0, 2} : std::vector<std::uint8_t>{5, 1, 0};
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(hello), net::use_tuple);
    if (wec) co_return io_error(via, dog, wec, "SOCKS5 greeting");
    std::array<std::uint8_t, 2> chosen{};
    auto [rec, rn] = co_await asio::async_read(sock, asio::buffer(chosen), net::use_tuple);
    if (rec) co_return io_error(via, dog, rec, "SOCKS5 greeting");
    if (chosen[0] != 5) co_return parent_error(via, error_kind::protocol_error, "not a SOCKS5 server");
    if (chosen[1] == 0) co_return result<void>{};
    if (chosen[1] != 2 || !auth)
        co_return parent_error(via, error_kind::parent_auth, "SOCKS5 server accepts none of our authentication methods");
    const std::string& user = *via.username;
    const std::string pass = via.password.value_or("");
    if (user.size() > 255 || pass.size() > 255)
        co_return parent_error(via, error_kind::parent_auth, "SOCKS5 user name or password over 255 bytes");
    std::string req;
    req += '\x01';
    req += static_cast<char>(user.size());
    req += user;
    req += static_cast<char>(pass.size());
    req += pass;
    auto [aec, an] = co_await asio::async_write(sock, asio::buffer(req), net::use_tuple);
    if (aec) co_return io_error(via, dog, aec, "SOCKS5 authentication");
    std::array<std::uint8_t, 2> status{};
    auto [sec, sn] = co_await asio::async_read(sock, asio::buffer(status), net::use_tuple);
    if (sec) co_return io_error(via, dog, sec, "SOCKS5 authentication");
    if (status[1] != 0) co_return parent_error(via, error_kind::parent_auth, "SOCKS5 authentication refused");
    co_return result<void>{};
}

// The CONNECT request's address: IPv4, IPv6 or a name.
result<std::string> socks5_request(std::string_view host, std::uint16_t port) {
    std::string req("\x05\x01\x00", 3);
    auto ip = core::ip_address::parse(host);
    if (ip && ip->is_v4) {
        req += '\x01';
        req.append(reinterpret_cast<const char*>(ip->bytes.data()) + 12, 4);
    } else if (ip) {
        req += '\x04';
        req.append(reinterpret_cast<const char*>(ip->bytes.data()), 16);
    } else {
        if (host.size() > 255) return make_error("host name over 255 bytes");
        req += '\x03';
        req += static_cast<char>(host.size());
        req += host;
    }
    req += static_cast<char>(port >> 8);
    req += static_cast<char>(port & 0xff);
    return req;
}

// The rest of the reply after VER REP RSV ATYP: the bound address and port, discarded.
asio::awaitable<boost::system::error_code> skip_bound_address(tcp::socket& sock, std::uint8_t atyp) {
    std::size_t len = 0;
    if (atyp == 1) len = 4;
    else if (atyp == 4) len = 16;
    else {
        std::array<std::uint8_t, 1> n{};
        auto [ec, got] = co_await asio::async_read(sock, asio::buffer(n), net::use_tuple);
        if (ec) co_return ec;
        len = n[0];
    }
    std::array<std::uint8_t, 258> rest{};
    auto [ec, got] = co_await asio::async_read(sock, asio::buffer(rest.data(), len + 2), net::use_tuple);
    co_return ec;
}

}  // namespace

std::string connect_request(const parent& via, std::string_view host, std::uint16_t port) {
    const std::string authority = bracketed(host) + ":" + std::to_string(port);
    std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (auto creds = via.basic_credentials(); !creds.empty()) req += "Proxy-Authorization: " + creds + "\r\n";
    req += "\r\n";
    return req;
}

int connect_reply_status(std::string_view head) {
    // "HTTP/1.x SSS ..."
    if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ') return -1;
    int status = 0;
    for (std::size_t i = 9; i < 12; ++i) {
        if (head[i] < '0' || head[i] > '9') return -1;
        status = status * 10 + (head[i] - '0');
    }
    if (head.size() > 12 && head[12] != ' ' && head[12] != '\r') return -1;
    return status >= 200 && status < 300 ? 0 : status;
}

asio::awaitable<result<void>> http_connect(tcp::socket& sock, const parent& via, std::string_view host,
                                           std::uint16_t port, std::chrono::steady_clock::duration timeout) {
    net::watchdog dog = net::closing_watchdog(sock);
    dog.expires_after(timeout);
    const std::string req = connect_request(via, host, port);
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(req), net::use_tuple);
    if (wec) co_return io_error(via, dog, wec, "CONNECT");
    asio::streambuf buf(max_reply_head);
    auto [rec, head_len] = co_await asio::async_read_until(sock, buf, "\r\n\r\n", net::use_tuple);
    if (rec == asio::error::not_found)
        co_return parent_error(via, error_kind::protocol_error, "CONNECT reply head over 16 KiB");
    if (rec) co_return io_error(via, dog, rec, "CONNECT");
    const std::string_view head(static_cast<const char*>(buf.data().data()), head_len);
    const int status = connect_reply_status(head);
    if (status < 0) co_return parent_error(via, error_kind::protocol_error, "CONNECT reply is not HTTP/1.x");
    if (status > 0) {
        const auto eol = head.find("\r\n");
        const std::string line(head.substr(9, eol - 9));
        error_kind kind = status == 407 ? error_kind::parent_auth : error_kind::parent_refused;
        co_return parent_error(via, kind, "CONNECT " + bracketed(host) + ":" + std::to_string(port) + " answered " + line);
    }
    if (buf.size() != head_len)
        co_return parent_error(via, error_kind::protocol_error, "bytes after the CONNECT reply before the origin spoke");
    co_return result<void>{};
}

asio::awaitable<result<void>> socks5_connect(tcp::socket& sock, const parent& via, std::string_view host,
                                             std::uint16_t port, std::chrono::steady_clock::duration timeout) {
    net::watchdog dog = net::closing_watchdog(sock);
    dog.expires_after(timeout);
    auto greeted = co_await socks5_greet(sock, via, dog);
    if (!greeted) co_return greeted.err();
    auto req = socks5_request(host, port);
    if (!req) co_return parent_error(via, error_kind::other, req.message());
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(*req), net::use_tuple);
    if (wec) co_return io_error(via, dog, wec, "SOCKS5 CONNECT");
    std::array<std::uint8_t, 4> reply{};
    auto [rec, rn] = co_await asio::async_read(sock, asio::buffer(reply), net::use_tuple);
    if (rec) co_return io_error(via, dog, rec, "SOCKS5 CONNECT");
    if (reply[0] != 5) co_return parent_error(via, error_kind::protocol_error, "SOCKS5 reply has the wrong version");
    if (reply[1] != 0) co_return socks_reply_error(via, reply[1]);
    if (reply[3] != 1 && reply[3] != 3 && reply[3] != 4)
        co_return parent_error(via, error_kind::protocol_error, "SOCKS5 reply has an unknown address type");
    const boost::system::error_code skipped = co_await skip_bound_address(sock, reply[3]);
    if (skipped) co_return io_error(via, dog, skipped, "SOCKS5 CONNECT");
    co_return result<void>{};
}

}  // namespace iron::upstream_proxy
