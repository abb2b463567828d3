#include "h2/server.hpp"

#include <memory>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <nghttp2/nghttp2.h>

#include "exchange/driver.hpp"
#include "h2/connection.hpp"
#include "h2/downstream.hpp"
#include "h2/transport.hpp"
#include "h2/upstream.hpp"
#include "net/live_connections.hpp"
#include "runtime/audit_entry.hpp"

namespace iron::h2 {

namespace asio = boost::asio;

namespace {

using client_tls = net::tls_stream<net::client_socket>;

// The exchanges of one client connection still running. The connection's handler waits for
// them, so it stays registered (graceful shutdown waits for it) until the last one is audited.
struct exchange_count {
    explicit exchange_count(asio::any_io_executor ex) : none_left(std::move(ex)) {}
    std::size_t n = 0;
    event none_left;
};

asio::awaitable<void> run_stream(std::shared_ptr<h2_downstream> down, std::shared_ptr<exchange_count> in_flight) {
    co_await exchange::drive_exchange(*down, down->st);
    if (--in_flight->n == 0) in_flight->none_left.notify();
}

// A client resetting streams as fast as it opens them (CVE-2023-44487, "rapid reset") frees its
// stream slots at once while our exchanges still run: past this many per connection, new
// streams are refused (and audited) until some finish.
constexpr std::size_t max_exchanges_per_connection = 2 * settings{}.max_concurrent_streams;

void refuse_stream(connection& c, stream& s, const runtime::connection_info& info) {
    runtime::audit_entry entry(info);
    if (const std::string* m = find_header(s.headers(), ":method")) entry.rec.method = *m;
    if (const std::string* a = find_header(s.headers(), ":authority")) entry.rec.host = *a;
    entry.settle(audit::action::reject, 503, "too many unfinished streams on this connection; stream refused");
    c.reset(s, NGHTTP2_REFUSED_STREAM);
}

// A request that never became an exchange (its head timed out or nghttp2 refused it): one record
// with the connection's fields, as HTTP/1.1 writes for a head it could not read.
void audit_unserved_request(const runtime::connection_info& info, unsigned status, std::string_view reason) {
    runtime::audit_entry entry(info);
    entry.settle(audit::action::reject, static_cast<int>(status), std::string(reason));
}

}  // namespace

template <class Stream>
asio::awaitable<void> serve_h2(Stream& client, runtime::connection_info& conn, net::watchdog& dog) {
    dog.disarm();
    auto info = std::make_shared<runtime::connection_info>(conn);
    auto in_flight = std::make_shared<exchange_count>(client.get_executor());
    auto c = std::make_shared<connection>(connection::role::server, client.get_executor(),
                                          std::make_unique<stream_transport<Stream&>>(client), settings{});
    c->on_request([info, in_flight](std::shared_ptr<connection> self, std::shared_ptr<stream> st) {
        if (in_flight->n >= max_exchanges_per_connection) {
            refuse_stream(*self, *st, *info);
            return;
        }
        ++in_flight->n;
        auto down = std::make_shared<h2_downstream>(self, std::move(st), info);
        asio::co_spawn(self->executor(), run_stream(std::move(down), in_flight), asio::detached);
    });
    c->on_unserved_request(
        [info](unsigned status, std::string_view reason) { audit_unserved_request(*info, status, reason); });
    // Shutting down: GOAWAY; streams in flight finish, then the connection closes by itself.
    if (conn.live) conn.live->on_drain([weak = std::weak_ptr<connection>(c)] {
        if (auto self = weak.lock()) self->shutdown();
    });
    co_await c->run(conn.shared->proxy.client_idle_timeout, conn.shared->proxy.client_header_timeout);
    c->on_request(nullptr);
    if (conn.live) conn.live->on_drain(nullptr);
    while (in_flight->n > 0) co_await in_flight->none_left.wait();
}

template asio::awaitable<void> serve_h2<client_tls>(client_tls&, runtime::connection_info&, net::watchdog&);
template asio::awaitable<void> serve_h2<net::client_socket>(net::client_socket&, runtime::connection_info&,
                                                            net::watchdog&);

}  // namespace iron::h2
