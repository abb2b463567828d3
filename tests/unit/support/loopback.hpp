#pragma once
// In-process networking for the request-path tests, all on 127.0.0.1 and one io_context:
// a connected TCP socket pair (the client's end and the proxy's accepted end), a tiny origin
// answering scripted bytes, client-side helpers, and a bounded way to run the io_context until
// the test's coroutines are done (waits never sleep: they run handlers until a condition holds
// or a deadline passes). Header-only: the unit-test glob compiles only *_test.cpp files.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace iron::test {

using tcp = boost::asio::ip::tcp;

// Runs `io` until `done()` holds, the io_context runs out of work, or `limit` passes. Returns
// done(). Pooled connections and idle deadlines keep an io_context busy long after a test's
// exchange ended, so tests wait for their own coroutines, never for run() to return.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped()) io.restart();
        if (io.run_one_until(deadline) == 0 && io.stopped()) break;  // nothing left to run
    }
    return done();
}

// Two ends of one loopback TCP connection: `client` connected to `server` (the accepted side).
struct socket_pair {
    tcp::socket client;
    tcp::socket server;
    tcp::endpoint client_endpoint;
};

inline socket_pair connected_pair(boost::asio::io_context& io) {
    tcp::acceptor acc(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket c(io);
    c.connect(acc.local_endpoint());
    tcp::socket s = acc.accept();
    const auto ep = c.local_endpoint();
    return socket_pair{std::move(c), std::move(s), ep};
}

// Writes `bytes`; false on error.
inline boost::asio::awaitable<bool> send_bytes(tcp::socket& s, std::string bytes) {
    auto [ec, n] = co_await boost::asio::async_write(s, boost::asio::buffer(bytes),
                                                     boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !ec;
}

// Everything the peer sends until it closes the connection.
inline boost::asio::awaitable<std::string> read_to_eof(tcp::socket& s) {
    std::string out;
    char buf[4096];
    for (;;) {
        auto [ec, n] = co_await s.async_read_some(boost::asio::buffer(buf), boost::asio::as_tuple(boost::asio::use_awaitable));
        out.append(buf, n);
        if (ec) co_return out;
    }
}

// An origin server on 127.0.0.1: each request head read (and a Content-Length body, if any) is
// recorded and answered with whatever `respond` returns for it; an answer containing
// "Connection: close" closes the connection after it is written. Its state is shared with its
// coroutines, which may outlive the object until the io_context goes.
class fake_origin {
public:
    using responder = std::function<std::string(const std::string& request)>;

    fake_origin(boost::asio::io_context& io, responder respond) : s_(std::make_shared<state>(io, std::move(respond))) {
        boost::asio::co_spawn(io, accept_loop(s_), boost::asio::detached);
    }
    ~fake_origin() {
        boost::system::error_code ignored;
        s_->acceptor.close(ignored);
    }
    fake_origin(const fake_origin&) = delete;
    fake_origin& operator=(const fake_origin&) = delete;

    std::uint16_t port() const { return s_->acceptor.local_endpoint().port(); }
    std::string authority() const { return "127.0.0.1:" + std::to_string(port()); }
    int connections() const { return s_->connections; }
    // Each request as it arrived: head and body.
    const std::vector<std::string>& requests() const { return s_->requests; }

    // An answer with a fixed body.
    static std::string ok(const std::string& body, const std::string& extra_headers = {}) {
        return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" +
               body;
    }

private:
    struct state {
        state(boost::asio::io_context& io, responder r)
            : acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)), respond(std::move(r)) {}
        tcp::acceptor acceptor;
        responder respond;
        int connections = 0;
        std::vector<std::string> requests;
    };

    static boost::asio::awaitable<void> accept_loop(std::shared_ptr<state> s) {
        for (;;) {
            auto [ec, sock] = co_await s->acceptor.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return;
            ++s->connections;
            boost::asio::co_spawn(s->acceptor.get_executor(), serve(s, std::move(sock)), boost::asio::detached);
        }
    }

    static std::size_t content_length(const std::string& head) {
        for (const char* name : {"\r\nContent-Length: ", "\r\ncontent-length: "}) {
            const auto at = head.find(name);
            if (at != std::string::npos) return std::stoul(head.substr(at + std::char_traits<char>::length(name)));
        }
        return 0;
    }

    static boost::asio::awaitable<void> serve(std::shared_ptr<state> s, tcp::socket sock) {
        using boost::asio::as_tuple;
        using boost::asio::use_awaitable;
        std::string buf;
        for (;;) {
            auto [ec, n] = co_await boost::asio::async_read_until(sock, boost::asio::dynamic_buffer(buf), "\r\n\r\n",
                                                                  as_tuple(use_awaitable));
            if (ec) co_return;
            std::string request = buf.substr(0, n);
            buf.erase(0, n);
            const std::size_t body = content_length(request);
            if (buf.size() < body) {
                auto [rec, rn] = co_await boost::asio::async_read(
                    sock, boost::asio::dynamic_buffer(buf), boost::asio::transfer_exactly(body - buf.size()),
                    as_tuple(use_awaitable));
                if (rec) co_return;
            }
            request += buf.substr(0, body);
            buf.erase(0, body);
            s->requests.push_back(request);
            const std::string answer = s->respond(request);
            auto [wec, wn] = co_await boost::asio::async_write(sock, boost::asio::buffer(answer), as_tuple(use_awaitable));
            if (wec || answer.find("Connection: close") != std::string::npos) co_return;
        }
    }

    std::shared_ptr<state> s_;
};

}  // namespace iron::test
