#include "upstream_proxy/router.hpp"

#include <utility>

#include "upstream_proxy/handshake.hpp"

namespace iron::upstream_proxy {

namespace asio = boost::asio;

namespace {

bool is_dns_failure(error_kind k) {
    switch (k) {
        case error_kind::dns_no_such_host:
        case error_kind::dns_no_address:
        case error_kind::dns_server_failure:
        case error_kind::dns_refused:
        case error_kind::dns_timeout:
        case error_kind::dns_other: return true;
        default: return false;
    }
}

bool is_socks(scheme s) { return s == scheme::socks5 || s == scheme::socks5h; }

// The origin's lookup here only screens it against the deny list; where the parent is the only way
// out, local DNS may be black-holed, and a lookup that never answers must not cost each new
// connection the whole connect timeout before it goes on by name.
constexpr std::chrono::milliseconds screen_lookup_budget{5000};

}  // namespace

std::string route::key_suffix() const {
    std::string out;
    if (via) out = (absolute_form ? " via " : " tunnel via ") + via->display;
    if (operator_endpoint) out += " operator";
    return out;
}

router::router(net::dialer& d, std::shared_ptr<const selector> chain, std::chrono::steady_clock::duration handshake_timeout)
    : dialer_(d), chain_(std::move(chain)), handshake_timeout_(handshake_timeout) {}

route router::choose(std::string_view host, std::uint16_t port, bool tls, carriage what, destination who) const {
    route r;
    // An operator endpoint is dialled directly, as the proxy's other operator endpoints are (model
    // APIs, transform services, secret stores): never through a parent.
    r.operator_endpoint = who == destination::operator_endpoint;
    if (!chain_ || r.operator_endpoint) return r;
    r.via = chain_->choose(host, port, tls);
    r.absolute_form = r.via && !tls && what == carriage::http && !is_socks(r.via->scheme);
    return r;
}

asio::awaitable<result<net::dial_result>> router::dial(std::string host, std::uint16_t port, route r) {
    if (r.via) co_return co_await dial_via(std::move(host), port, r);
    if (r.operator_endpoint) co_return co_await dialer_.dial_operator(std::move(host), port);
    co_return co_await dialer_.dial(std::move(host), port);
}

asio::awaitable<result<net::dial_result>> router::dial_via(std::string host, std::uint16_t port, route r) {
    const parent& via = *r.via;
    // Default deny already ran; now the deny list, on every address the name has here.
    std::string target = host;
    auto screened = co_await dialer_.screen(host, port, screen_lookup_budget);
    if (!screened) {
        const error_kind kind = screened.err().kind;
        if (!is_dns_failure(kind)) co_return screened.err();
        if (via.scheme == scheme::socks5)
            co_return make_error(kind, "upstream proxy " + via.display + " (socks5: the origin's address is resolved here): " +
                                           screened.message());
    } else if (via.scheme == scheme::socks5) {
        target = screened->front().to_string();
    }

    auto conn = co_await dialer_.dial_operator(via.host, via.port);
    if (!conn) co_return make_error(conn.err().kind, "upstream proxy " + via.display + ": " + conn.message());
    if (r.absolute_form) co_return std::move(*conn);

    result<void> opened = result<void>{};
    if (is_socks(via.scheme))
        opened = co_await socks5_connect(conn->socket, via, target, port, handshake_timeout_);
    else
        opened = co_await http_connect(conn->socket, via, target, port, handshake_timeout_);
    if (!opened) co_return opened.err();
    co_return std::move(*conn);
}

}  // namespace iron::upstream_proxy
