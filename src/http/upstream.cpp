#include "http/upstream.hpp"

#include <poll.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/dialer.hpp"
#include "net/watchdog.hpp"
#include "tls/contexts.hpp"

namespace iron::http {

namespace asio = boost::asio;

tcp_socket& upstream_conn::socket() {
    if (auto* s = std::get_if<tcp_socket>(&stream)) return *s;
    return std::get<tls_socket>(stream).next_layer();
}

net::watchdog& upstream_conn::deadline() {
    // Built on first use, when the connection already sits at its final address.
    if (!deadline_) deadline_ = std::make_unique<net::watchdog>(socket().get_executor(), [this] { close(); });
    return *deadline_;
}

void upstream_conn::close() {
    boost::system::error_code ec;
    socket().shutdown(tcp_socket::shutdown_both, ec);
    socket().close(ec);
}

upstream_pool::upstream_pool(upstream_proxy::router& router, asio::ssl::context& client_tls, upstream_timeouts timeouts)
    : router_(router), client_tls_(client_tls), timeouts_(timeouts) {}

std::string upstream_pool::make_key(const std::string& host, std::uint16_t port, bool tls,
                                    const upstream_proxy::route& via) {
    std::string key(tls ? "https://" : "http://");
    key.reserve(key.size() + host.size() + 6);  // one allocation for the whole key (direct)
    key += host;
    key += ':';
    key += std::to_string(port);
    if (via.keyed()) key += via.key_suffix();
    return key;
}

std::size_t upstream_pool::idle_count() const { return idle_total_; }

namespace {

// An idle keep-alive connection is only reusable if the origin has not closed it or sent stray
// bytes meanwhile: either makes the socket readable.
bool looks_healthy(upstream_conn& c) {
    if (!c.socket().is_open()) return false;
    // Released a moment ago (busy keep-alive traffic): origins close idle connections after
    // seconds, one that meant to close now would have said Connection: close, and a close racing
    // with the reuse is caught by the stale-connection retry either way (as it is after a poll).
    // Skip the poll() syscall.
    if (std::chrono::steady_clock::now() - c.idle_since < std::chrono::milliseconds(50)) return true;
    pollfd p{c.socket().native_handle(), POLLIN, 0};
    int n = ::poll(&p, 1, 0);
    return n == 0;
}

}  // namespace

std::unique_ptr<upstream_conn> upstream_pool::take_idle(const std::string& host, std::uint16_t port, bool tls,
                                                       upstream_proxy::carriage what, upstream_proxy::destination who) {
    auto it = idle_.find(make_key(host, port, tls, router_.choose(host, port, tls, what, who)));
    if (it == idle_.end()) return nullptr;
    auto& idle = it->second;
    const auto now = std::chrono::steady_clock::now();
    std::unique_ptr<upstream_conn> found;
    while (!found && !idle.empty()) {
        std::unique_ptr<upstream_conn> c = std::move(idle.back());
        idle.pop_back();
        --idle_total_;
        if (now - c->idle_since < timeouts_.idle && looks_healthy(*c)) found = std::move(c);
        else c->close();
    }
    if (idle.empty()) idle_.erase(it);
    return found;
}

asio::awaitable<result<std::unique_ptr<upstream_conn>>> upstream_pool::acquire(std::string host, std::uint16_t port,
                                                                              bool tls, bool& reused) {
    reused = false;
    if (auto c = take_idle(host, port, tls)) {
        reused = true;
        co_return c;
    }
    co_return co_await connect(std::move(host), port, tls);
}

asio::awaitable<result<std::unique_ptr<upstream_conn>>> upstream_pool::connect(std::string host, std::uint16_t port,
                                                                              bool tls, bool offer_h2,
                                                                              upstream_proxy::carriage what,
                                                                              upstream_proxy::destination who) {
    // Cleartext HTTP/2 (prior knowledge) is opaque to an HTTP/1.1 parent: it needs a tunnel.
    if (!tls && offer_h2) what = upstream_proxy::carriage::opaque;
    const auto route = router_.choose(host, port, tls, what, who);
    auto dialed = co_await router_.dial(host, port, route);
    if (!dialed) co_return dialed.err();
    auto conn = std::make_unique<upstream_conn>(
        upstream_conn{std::move(dialed->socket), {}, make_key(host, port, tls, route), {}, false, nullptr, nullptr});
    if (route.absolute_form) conn->absolute_via = route.via;
    if (!tls) co_return conn;

    tls_socket stream(std::move(std::get<tcp_socket>(conn->stream)), client_tls_);
    if (auto prepared = tls::prepare_client_ssl(stream.native_handle(), host); !prepared)
        co_return make_error("tls: " + prepared.message());
    static constexpr unsigned char h1_only[] = "\x08http/1.1";
    static constexpr unsigned char h2_first[] = "\x02h2\x08http/1.1";
    if (offer_h2)
        SSL_set_alpn_protos(stream.native_handle(), h2_first, sizeof h2_first - 1);
    else
        SSL_set_alpn_protos(stream.native_handle(), h1_only, sizeof h1_only - 1);
    {
        tcp_socket& raw = stream.next_layer();
        net::watchdog dog = net::closing_watchdog(raw);
        dog.expires_after(timeouts_.tls_handshake);
        auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
        if (dog.fired()) co_return make_error(error_kind::connect_timeout, "tls handshake with " + host + ": timeout");
        if (ec) {
            std::string reason = ec.message();
            auto kind = error_kind::tls_handshake;
            long verify = SSL_get_verify_result(stream.native_handle());
            if (verify != X509_V_OK) {
                reason = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
                kind = error_kind::tls_certificate;
            }
            co_return make_error(kind, "tls handshake with " + host + ": " + reason);
        }
    }
    const unsigned char* chosen = nullptr;
    unsigned int chosen_len = 0;
    SSL_get0_alpn_selected(stream.native_handle(), &chosen, &chosen_len);
    conn->h2 = offer_h2 && chosen_len == 2 && chosen[0] == 'h' && chosen[1] == '2';
    conn->stream.emplace<tls_socket>(std::move(stream));
    co_return conn;
}

void upstream_pool::release(std::unique_ptr<upstream_conn> conn) {
    if (!conn || !conn->socket().is_open()) return;
    if (idle_total_ >= timeouts_.max_idle_total || timeouts_.max_idle_per_key == 0) {
        conn->close();
        return;
    }
    auto& idle = idle_[conn->key];
    if (idle.size() >= timeouts_.max_idle_per_key) {  // not empty, so the entry was there already
        conn->close();
        return;
    }
    conn->idle_since = std::chrono::steady_clock::now();
    // The pool's idle rules apply now, not the last exchange's deadline.
    if (conn->deadline_) conn->deadline_->disarm();
    conn->buffer.clear();
    idle.push_back(std::move(conn));
    ++idle_total_;
}

}  // namespace iron::http
