#include "http/session.hpp"

#include <optional>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/read.hpp>

#include "exchange/driver.hpp"
#include "http/body_io.hpp"
#include "http/downstream_h1.hpp"
#include "http/request_parser.hpp"
#include "net/await.hpp"
#include "net/client_socket.hpp"
#include "net/tls_stream.hpp"

namespace iron::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

// While a session waits for its next request, a drain closes the connection unless part of that
// request already arrived (then it is served, with Connection: close).
class pending_input_watch {
public:
    pending_input_watch(net::live_connection* live, const beast::flat_buffer& buffer) : live_(live) {
        if (live_) live_->watch_pending_input(&has_bytes, &buffer);
    }
    ~pending_input_watch() {
        if (live_) live_->watch_pending_input(nullptr, nullptr);
    }
    pending_input_watch(const pending_input_watch&) = delete;
    pending_input_watch& operator=(const pending_input_watch&) = delete;

private:
    static bool has_bytes(const void* b) { return static_cast<const beast::flat_buffer*>(b)->size() > 0; }
    net::live_connection* live_;
};

// Why a request head that began to arrive could not be read: cut by client_header_timeout (no
// response: the client gets the connection closed), or malformed (400 with Beast's reason).
std::optional<exchange::failure> head_failure(const boost::system::error_code& ec, const net::watchdog& dog) {
    if (!ec) return std::nullopt;
    if (dog.fired()) return exchange::client_failure(exchange::failure_kind::head_timeout, "timeout reading request header");
    return exchange::client_failure(exchange::failure_kind::malformed, "malformed request: " + ec.message());
}

// A request head (or the rest of one whose first bytes are in cc.buffer). Over TLS, a head that arrived
// whole is parsed without a trip through the scheduler (http/body_io.hpp says why that counts).
template <class Client>
asio::awaitable<boost::system::error_code> read_request_head(Client& client, client_connection& cc,
                                                              request_parser& parser) {
    boost::system::error_code ec;
    if constexpr (has_non_waiting_io<Client>) {
        beast::http::read_header(client, cc.buffer, parser, ec);
        if (ec != asio::error::would_block) co_return ec;
    }
    std::tie(ec, std::ignore) = co_await beast::http::async_read_header(client, cc.buffer, parser, net::use_tuple);
    co_return ec;
}

// One exchange; true when the connection may carry another. The deadline serve_http armed covers
// the wait for the head (when its first bytes are not in cc.buffer yet) and the head itself.
template <class Client>
asio::awaitable<bool> serve_exchange(Client& client, client_connection& cc) {
    const auto& proxy = cc.conn.shared->proxy;
    request_parser parser;
    limit_client_request(parser);
    const boost::system::error_code ec = co_await read_request_head(client, cc, parser);
    if (ec && !parser.got_some()) co_return false;  // no request, no record
    cc.dog.expires_after(proxy.client_idle_timeout);
    net::live_connection::work_scope in_flight(cc.conn.live);  // a drain lets this exchange finish
    runtime::exchange_state st(cc.conn);
    h1_downstream<Client> down(client, cc, parser, head_failure(ec, cc.dog));
    co_await exchange::drive_exchange(down, st);
    co_return down.keep_alive();
}

}  // namespace

template <class Stream>
asio::awaitable<void> serve_http(Stream& client, runtime::connection_info& conn, net::watchdog& dog) {
    client_connection cc{conn, dog, {}, {}};
    pending_input_watch watch(conn.live, cc.buffer);
    const auto& proxy = conn.shared->proxy;
    for (bool first = true;; first = false) {
        // Over TLS the next request's first bytes are awaited here rather than inside
        // serve_exchange, so an idle keep-alive connection holds no exchange frame, request parser
        // or Beast operation (about 3 KiB of the ~25 KiB an idle MITM connection costs), and the
        // head is then parsed without waiting. A plain socket has no such parse: a read here would
        // cost every request one more trip through the scheduler, so it waits in the exchange.
        dog.expires_after(first ? proxy.client_header_timeout : proxy.client_idle_timeout);
        if (has_non_waiting_io<Stream> && cc.buffer.size() == 0) {
            auto [ec, n] = co_await client.async_read_some(cc.buffer.prepare(beast::read_size(cc.buffer, 65536)),
                                                           net::use_tuple);
            cc.buffer.commit(n);
            if (n == 0) break;  // closed, failed or timed out while idle: no request, no record
        }
        const bool again = co_await serve_exchange(client, cc);
        cc.relay.give_back();
        if (!again || runtime::draining(conn)) break;
        // A request body made the read buffer grow to a relay chunk: give that back between
        // exchanges (nothing is lost: it is empty unless the client pipelined).
        if (cc.buffer.size() == 0 && cc.buffer.capacity() > 4096) cc.buffer.shrink_to_fit();
    }
}

template asio::awaitable<void> serve_http<net::client_socket>(net::client_socket&, runtime::connection_info&,
                                                              net::watchdog&);
template asio::awaitable<void> serve_http<net::tls_stream<net::client_socket>>(net::tls_stream<net::client_socket>&,
                                                                              runtime::connection_info&, net::watchdog&);

}  // namespace iron::http
