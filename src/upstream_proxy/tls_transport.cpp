#include "upstream_proxy/tls_transport.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "net/await.hpp"
#include "net/splice.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"
#include "tls/contexts.hpp"

namespace iron::upstream_proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using parent_tls = net::tls_stream<tcp::socket>;

namespace {

// The bridge lives as long as the connection it carries; the pool's idle timeout and the
// origin's own deadlines bound that. This only cuts a bridge nobody closed for a whole day.
constexpr std::chrono::hours bridge_idle{24};

error tls_error(const parent& via, error_kind kind, const std::string& why) {
    return make_error(kind, "upstream proxy " + via.display + ": tls handshake: " + why);
}

// A connected AF_UNIX pair, both ends non-blocking and owned by asio: {ours, the relay's}.
result<std::pair<tcp::socket, tcp::socket>> make_bridge(const asio::any_io_executor& ex) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return make_error(std::string("socketpair: ") + std::strerror(errno));
    tcp::socket ours(ex), theirs(ex);
    boost::system::error_code ec;
    // The protocol tag only tells asio how to name endpoints, which nobody asks of these sockets.
    ours.assign(tcp::v4(), fds[0], ec);
    if (ec) {
        ::close(fds[0]);
        ::close(fds[1]);
        return make_error("socketpair: " + ec.message());
    }
    theirs.assign(tcp::v4(), fds[1], ec);
    if (ec) {
        ::close(fds[1]);
        return make_error("socketpair: " + ec.message());
    }
    return std::pair<tcp::socket, tcp::socket>{std::move(ours), std::move(theirs)};
}

// Moves bytes between the bridge end and the parent's TLS session until either side is done,
// then closes both (a TLS side cannot half-close, so either direction ending ends the bridge).
asio::awaitable<void> run_bridge(std::unique_ptr<parent_tls> session, std::unique_ptr<tcp::socket> end) {
    net::watchdog dog(end->get_executor(), [s = session.get(), e = end.get()] {
        boost::system::error_code ignored;
        e->close(ignored);
        s->lowest_layer().close(ignored);
    });
    co_await net::splice(*end, *session, dog, bridge_idle);
    boost::system::error_code ignored;
    end->close(ignored);
    session->lowest_layer().close(ignored);
}

}  // namespace

asio::awaitable<result<tcp::socket>> open_tls_to_parent(tcp::socket to_parent, const parent& via,
                                                       asio::ssl::context& trust,
                                                       std::chrono::steady_clock::duration handshake_timeout) {
    auto ex = to_parent.get_executor();
    auto session = std::make_unique<parent_tls>(std::move(to_parent), trust);
    if (auto prepared = tls::prepare_client_ssl(session->native_handle(), via.host); !prepared)
        co_return tls_error(via, error_kind::tls_handshake, prepared.message());
    static constexpr unsigned char h1_only[] = "\x08http/1.1";  // the parent speaks HTTP/1.1 proxy requests
    SSL_set_alpn_protos(session->native_handle(), h1_only, sizeof h1_only - 1);
    {
        net::watchdog dog = net::closing_watchdog(session->next_layer());
        dog.expires_after(handshake_timeout);
        auto [ec] = co_await session->async_handshake(asio::ssl::stream_base::client, net::use_tuple);
        if (dog.fired()) co_return tls_error(via, error_kind::connect_timeout, "timeout");
        if (ec) {
            const long verify = SSL_get_verify_result(session->native_handle());
            if (verify != X509_V_OK)
                co_return tls_error(via, error_kind::tls_certificate,
                                    std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify));
            co_return tls_error(via, error_kind::tls_handshake, ec.message());
        }
    }
    auto bridge = make_bridge(ex);
    if (!bridge) co_return make_error(error_kind::other, "upstream proxy " + via.display + ": " + bridge.message());
    auto relay_end = std::make_unique<tcp::socket>(std::move(bridge->second));
    asio::co_spawn(ex, run_bridge(std::move(session), std::move(relay_end)), asio::detached);
    co_return std::move(bridge->first);
}

}  // namespace iron::upstream_proxy
