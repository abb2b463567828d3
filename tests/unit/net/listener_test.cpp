#include "net/listener.hpp"

#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

using namespace iron::net;

TEST(ListenAddress, Forms) {
    auto all = parse_listen_address(":8080");
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->address().is_unspecified());
    EXPECT_EQ(all->port(), 8080);
    auto v4 = parse_listen_address("127.0.0.1:0");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->address().to_string(), "127.0.0.1");
    auto v6 = parse_listen_address("[::1]:443");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->address().to_string(), "::1");
    EXPECT_EQ(v6->port(), 443);
}

TEST(ListenAddress, Errors) {
    EXPECT_FALSE(parse_listen_address("8080"));
    EXPECT_FALSE(parse_listen_address("127.0.0.1:http"));
    EXPECT_FALSE(parse_listen_address("127.0.0.1:70000"));
    EXPECT_FALSE(parse_listen_address("example.com:80"));
}

// The port is parsed by core::parse_port with 0 allowed: digits only (strtol used to let ": 80",
// ":+80" and ":-0" through).
TEST(ListenAddress, PortIsDigitsOnlyAndMayBeZero) {
    EXPECT_FALSE(parse_listen_address("127.0.0.1:"));
    EXPECT_FALSE(parse_listen_address("127.0.0.1: 80"));
    EXPECT_FALSE(parse_listen_address("127.0.0.1:+80"));
    EXPECT_FALSE(parse_listen_address("127.0.0.1:-0"));
    auto zero = parse_listen_address(":0");
    ASSERT_TRUE(zero);
    EXPECT_EQ(zero->port(), 0);
    auto padded = parse_listen_address("127.0.0.1:08080");
    ASSERT_TRUE(padded);
    EXPECT_EQ(padded->port(), 8080);
}

TEST(Acceptor, SecondBindOnSamePortSharesWithReusePort) {
    boost::asio::io_context ioc;
    auto ep = parse_listen_address("127.0.0.1:0");
    ASSERT_TRUE(ep);
    auto a = open_acceptor(ioc.get_executor(), *ep, "127.0.0.1:0");
    ASSERT_TRUE(a) << a.message();
    auto bound = a->local_endpoint();
    auto b = open_acceptor(ioc.get_executor(), bound, "again");
    ASSERT_TRUE(b) << b.message();
    EXPECT_EQ(b->local_endpoint().port(), bound.port());
}

TEST(Acceptor, BindErrorNamesTheAddress) {
    boost::asio::io_context ioc;
    auto ep = parse_listen_address("192.0.2.1:0");  // TEST-NET-1: not a local address
    ASSERT_TRUE(ep);
    auto a = open_acceptor(ioc.get_executor(), *ep, "192.0.2.1:0");
    ASSERT_FALSE(a);
    EXPECT_NE(a.message().find("listen tcp 192.0.2.1:0: bind:"), std::string::npos) << a.message();
}

TEST(AcceptLoop, HandsOverTheSocketWithNoDelayAndThePeerAddress) {
    namespace asio = boost::asio;
    using tcp = asio::ip::tcp;
    asio::io_context ioc;
    auto ep = parse_listen_address("127.0.0.1:0");
    ASSERT_TRUE(ep);
    auto acc = open_acceptor(ioc.get_executor(), *ep, "127.0.0.1:0");
    ASSERT_TRUE(acc) << acc.message();
    tcp::socket client(ioc);
    client.connect(acc->local_endpoint());
    std::optional<tcp::socket> accepted;
    tcp::endpoint peer;
    asio::co_spawn(ioc,
                   accept_loop(*acc,
                               [&](tcp::socket s, const tcp::endpoint& p) {
                                   accepted.emplace(std::move(s));
                                   peer = p;
                                   acc->close();
                               }),
                   asio::detached);
    ioc.run();
    ASSERT_TRUE(accepted);
    EXPECT_EQ(peer, client.local_endpoint());
    // Inherited from the listener: no setsockopt per connection.
    tcp::no_delay nd;
    accepted->get_option(nd);
    EXPECT_TRUE(nd.value());
}
