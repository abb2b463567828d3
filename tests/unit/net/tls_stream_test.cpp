#include "net/tls_stream.hpp"

#include <array>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "support/test_ca.hpp"
#include "tls/contexts.hpp"

namespace iron::net {
namespace {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

using server_stream = tls_stream<client_socket>;
using client_stream = tls_stream<tcp::socket>;

// A MITM server context (leaf minted for the SNI) and a client context trusting its CA, plus a
// connected, handshaken pair of streams over loopback TCP.
class tls_stream_test : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(ca_.ok());
        server_ctx_.emplace(ca_.asio_server_context());
        client_ctx_.emplace(ca_.asio_client_context());
    }

    // One server write of `bufs` (the first one also carries any deferred session ticket), read
    // whole by the client; returns what the client got.
    template <class Buffers>
    std::string server_sends(const Buffers& bufs) {
        std::string got(asio::buffer_size(bufs), '\0');
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            auto [ec, n] = co_await asio::async_write(*server_, bufs, as_tuple(use_awaitable));
            EXPECT_FALSE(ec) << ec.message();
        }, asio::detached);
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            auto [ec, n] = co_await asio::async_read(*client_, asio::buffer(got), as_tuple(use_awaitable));
            EXPECT_FALSE(ec) << ec.message();
        }, asio::detached);
        io_.run();
        io_.restart();
        return got;
    }

    // Connects, moves `readahead` bytes of the ClientHello into the server socket's replay buffer
    // (as the protocol sniff does), and completes both handshakes (resuming `session` if given).
    void connect_pair(std::size_t readahead = 5, SSL_SESSION* session = nullptr) {
        tcp::acceptor acc(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        tcp::socket c(io_);
        c.connect(acc.local_endpoint());
        tcp::socket s = acc.accept();
        client_.emplace(std::move(c), *client_ctx_);
        ASSERT_TRUE(tls::prepare_client_ssl(client_->native_handle(), "example.test"));
        if (session) SSL_set_session(client_->native_handle(), session);
        client_socket cs(std::move(s));
        bool client_ok = false, server_ok = false;
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            auto [ec] = co_await client_->async_handshake(asio::ssl::stream_base::client, as_tuple(use_awaitable));
            EXPECT_FALSE(ec) << ec.message();
            client_ok = !ec;
        }, asio::detached);
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            if (readahead > 0) {
                std::string head(readahead, '\0');
                auto [ec, n] = co_await asio::async_read(cs.socket(), asio::buffer(head), as_tuple(use_awaitable));
                EXPECT_FALSE(ec) << ec.message();
                cs.unread(head);
            }
            server_.emplace(std::move(cs), *server_ctx_);
            auto [ec] = co_await server_->async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
            EXPECT_FALSE(ec) << ec.message();
            server_ok = !ec;
        }, asio::detached);
        io_.run();
        io_.restart();
        ASSERT_TRUE(client_ok && server_ok);
    }

    test::test_ca ca_;  // before the contexts: the server context's callback uses its leaf cache
    std::optional<asio::ssl::context> server_ctx_, client_ctx_;
    asio::io_context io_;
    std::optional<client_stream> client_;
    std::optional<server_stream> server_;
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

TEST_F(tls_stream_test, both_directions_at_once_with_large_writes) {
    connect_pair();
    // Down is larger than the socket buffers, and read late: the writer must queue and wait.
    const std::string up = pattern(300 * 1024), down = pattern(24 * 1024 * 1024 + 17);
    std::string got_up(up.size(), '\0'), got_down(down.size(), '\0');
    int done = 0;
    auto run = [&](auto& from, auto& to, const std::string& data, std::string& got) {
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            auto [ec, n] = co_await asio::async_write(from, asio::buffer(data), as_tuple(use_awaitable));
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(n, data.size());
            ++done;
        }, asio::detached);
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            asio::steady_timer late(io_, 100ms);
            co_await late.async_wait(use_awaitable);
            auto [ec, n] = co_await asio::async_read(to, asio::buffer(got), as_tuple(use_awaitable));
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(n, got.size());
            ++done;
        }, asio::detached);
    };
    run(*client_, *server_, up, got_up);
    run(*server_, *client_, down, got_down);
    io_.run();
    EXPECT_EQ(done, 4);
    EXPECT_TRUE(got_up == up);
    EXPECT_TRUE(got_down == down);
}

TEST_F(tls_stream_test, small_pieces_of_one_write_arrive_in_order) {
    connect_pair(0);
    const std::string a = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b = "hello";
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(a), asio::buffer(b)};
    EXPECT_EQ(server_sends(bufs), a + b);
}

TEST_F(tls_stream_test, read_some_now_takes_what_is_decrypted_and_else_says_would_block) {
    connect_pair(0);
    std::array<char, 64> buf{};
    boost::system::error_code ec;
    // Nothing sent yet, and a fresh stream expects to wait: would_block, without a recv.
    EXPECT_EQ(server_->read_some(asio::buffer(buf), ec), 0u);
    EXPECT_EQ(ec, asio::error::would_block);

    const std::string msg = pattern(40);
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [wec, n] = co_await asio::async_write(*client_, asio::buffer(msg), as_tuple(use_awaitable));
        EXPECT_FALSE(wec) << wec.message();
    }, asio::detached);
    // The asynchronous read waits for the record and takes 10 of its 40 bytes ...
    std::size_t got = 0;
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [rec, n] = co_await server_->async_read_some(asio::buffer(buf.data(), 10), as_tuple(use_awaitable));
        EXPECT_FALSE(rec) << rec.message();
        got = n;
    }, asio::detached);
    io_.run();
    io_.restart();
    ASSERT_EQ(got, 10u);
    // ... the other 30 are decrypted and at hand: the non-waiting read returns them ...
    got += server_->read_some(asio::buffer(buf.data() + got, buf.size() - got), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(std::string(buf.data(), got), msg);
    // ... and then finds the socket empty.
    EXPECT_EQ(server_->read_some(asio::buffer(buf), ec), 0u);
    EXPECT_EQ(ec, asio::error::would_block);
}

TEST_F(tls_stream_test, write_some_now_queues_what_the_kernel_refuses_and_async_flush_drains_it) {
    connect_pair(0);
    const std::string big = pattern(8 * 1024 * 1024);
    boost::system::error_code ec;
    std::size_t put = 0;
    // Nobody reads yet: the socket buffers fill, the rest of one write stays queued, and the next
    // non-waiting write is refused without consuming anything.
    for (int i = 0; i < 1000 && !server_->output_pending() && put < big.size(); ++i)
        put += server_->write_some(asio::buffer(big.data() + put, big.size() - put), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(server_->output_pending());
    EXPECT_EQ(server_->write_some(asio::buffer(big.data() + put, big.size() - put), ec), 0u);
    EXPECT_EQ(ec, asio::error::would_block);

    std::string got(put, '\0');
    bool flushed = false;
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [fec] = co_await server_->async_flush(as_tuple(use_awaitable));
        EXPECT_FALSE(fec) << fec.message();
        flushed = true;
    }, asio::detached);
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [rec, n] = co_await asio::async_read(*client_, asio::buffer(got), as_tuple(use_awaitable));
        EXPECT_FALSE(rec) << rec.message();
    }, asio::detached);
    io_.run();
    EXPECT_TRUE(flushed);
    EXPECT_FALSE(server_->output_pending());
    EXPECT_TRUE(got == big.substr(0, put));
}

TEST_F(tls_stream_test, close_notify_reads_as_eof_and_a_bare_close_as_truncated) {
    connect_pair();
    std::optional<boost::system::error_code> server_read, client_read;
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await client_->async_shutdown(as_tuple(use_awaitable));
        (void)ec;  // the server never answers with its own close_notify here
    }, asio::detached);
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        char buf[16];
        auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
        server_read = ec;
        server_->lowest_layer().close();  // no close_notify back
    }, asio::detached);
    io_.run();
    ASSERT_TRUE(server_read);
    EXPECT_EQ(*server_read, asio::error::eof) << server_read->message();

    // The other direction: the server's socket is gone without a close_notify.
    io_.restart();
    connect_pair();
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        char buf[16];
        auto [ec, n] = co_await client_->async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
        client_read = ec;
    }, asio::detached);
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        server_->lowest_layer().close();
        co_return;
    }, asio::detached);
    io_.run();
    ASSERT_TRUE(client_read);
    EXPECT_EQ(*client_read, asio::ssl::error::stream_truncated) << client_read->message();
}

TEST_F(tls_stream_test, a_moved_stream_keeps_working_and_a_closed_socket_aborts_a_pending_read) {
    connect_pair();
    client_stream moved(std::move(*client_));  // as upstream connections move into the pool
    client_.reset();
    std::string got(4, '\0');
    std::optional<boost::system::error_code> pending;
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await asio::async_write(moved, asio::buffer("ping", 4), as_tuple(use_awaitable));
        EXPECT_FALSE(ec) << ec.message();
    }, asio::detached);
    asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await asio::async_read(*server_, asio::buffer(got), as_tuple(use_awaitable));
        EXPECT_FALSE(ec) << ec.message();
        // Now wait for more, and let a "watchdog" close the socket under the pending read.
        asio::post(io_, [&] { server_->lowest_layer().close(); });
        char buf[8];
        auto [ec2, n2] = co_await server_->async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
        pending = ec2;
    }, asio::detached);
    io_.run();
    EXPECT_EQ(got, "ping");
    ASSERT_TRUE(pending);
    EXPECT_TRUE(*pending) << "a read on a closed socket must fail";
}

TEST_F(tls_stream_test, the_session_ticket_comes_with_the_first_write_and_resumes) {
    connect_pair();
    // No ticket right after the handshake: it is sent with the server's first write.
    EXPECT_EQ(server_sends(asio::buffer("hi", 2)), "hi");
    SSL_SESSION* session = SSL_get1_session(client_->native_handle());
    ASSERT_NE(session, nullptr);
    // Close properly: OpenSSL marks the session of an SSL freed without a shutdown unresumable.
    for (auto* s : {static_cast<void*>(&*client_), static_cast<void*>(&*server_)}) {
        asio::co_spawn(io_, [&, s]() -> asio::awaitable<void> {
            if (s == &*client_) co_await client_->async_shutdown(as_tuple(use_awaitable));
            else co_await server_->async_shutdown(as_tuple(use_awaitable));
        }, asio::detached);
    }
    io_.run();
    io_.restart();
    EXPECT_TRUE(SSL_SESSION_is_resumable(session));
    connect_pair(5, session);
    EXPECT_TRUE(SSL_session_reused(client_->native_handle()));
    EXPECT_TRUE(SSL_session_reused(server_->native_handle()));
    SSL_SESSION_free(session);
}

TEST_F(tls_stream_test, skipped_session_tickets_are_never_sent) {
    connect_pair();
    server_->skip_session_tickets();
    EXPECT_EQ(server_sends(asio::buffer("hi", 2)), "hi");
    // The ticket would have preceded the data: a TLS 1.3 session without one cannot resume.
    SSL_SESSION* session = SSL_get1_session(client_->native_handle());
    ASSERT_NE(session, nullptr);
    EXPECT_FALSE(SSL_SESSION_is_resumable(session));
    SSL_SESSION_free(session);
}

}  // namespace
}  // namespace iron::net
