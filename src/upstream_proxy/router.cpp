#include "upstream_proxy/router.hpp"

#include <utility>
#include <vector>

#include "upstream_proxy/handshake.hpp"
#include "upstream_proxy/tls_transport.hpp"

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

// How many of the origin's checked addresses a socks5:// parent is asked for, one after another.
constexpr std::size_t max_socks5_addresses = 4;

// The tunnel replies that say the parent could not reach that address (SOCKS5: network or host
// unreachable, connection refused): another address of the same name may work. Not a parent
// that is down or silent: asking it again for another address would only multiply the wait.
bool parent_could_not_reach(error_kind k) { return k == error_kind::unreachable || k == error_kind::connect_refused; }

}  // namespace

std::string route::key_suffix() const {
    std::string out;
    if (via) out = (absolute_form ? " via " : " tunnel via ") + via->display;
    if (operator_endpoint) out += " operator";
    return out;
}

router::router(net::dialer& d, std::shared_ptr<const selector> chain, std::chrono::steady_clock::duration handshake_timeout,
               asio::ssl::context* parent_trust)
    : dialer_(d), chain_(std::move(chain)), handshake_timeout_(handshake_timeout), parent_trust_(parent_trust) {}

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
    std::vector<std::string> targets{host};
    auto screened = co_await dialer_.screen(host, port, screen_lookup_budget);
    if (!screened) {
        const error_kind kind = screened.err().kind;
        if (!is_dns_failure(kind)) co_return screened.err();
        if (via.scheme == scheme::socks5)
            co_return make_error(kind, "upstream proxy " + via.display + " (socks5: the origin's address is resolved here): " +
                                           screened.message());
    } else if (via.scheme == scheme::socks5) {
        // socks5:// hands the parent a checked address. Like a direct dial, the next one is tried
        // when the parent cannot reach this one (an IPv6 address on a parent without IPv6, say).
        targets.clear();
        for (std::size_t i = 0; i < screened->size() && i < max_socks5_addresses; ++i)
            targets.push_back((*screened)[i].to_string());
    }

    result<net::dial_result> last = make_error("upstream proxy " + via.display + ": no address to ask for");
    for (const std::string& target : targets) {
        bool tunnel_refused = false;
        last = co_await open_via(via, target, port, r.absolute_form, tunnel_refused);
        if (last || !tunnel_refused || !parent_could_not_reach(last.err().kind)) break;
    }
    co_return last;
}

// One connection to the parent and, unless the request itself goes to the parent, its tunnel to
// `target` (a name, or for socks5:// a checked address). `tunnel_refused`: the parent answered,
// and the failure is its answer about the target.
asio::awaitable<result<net::dial_result>> router::open_via(const parent& via, std::string target, std::uint16_t port,
                                                            bool absolute_form, bool& tunnel_refused) {
    auto conn = co_await dialer_.dial_operator(via.host, via.port);
    if (!conn) co_return make_error(conn.err().kind, "upstream proxy " + via.display + ": " + conn.message());
    if (via.scheme == scheme::https) {
        if (!parent_trust_) co_return make_error("upstream proxy " + via.display + ": no TLS context for https:// parents");
        auto wrapped = co_await open_tls_to_parent(std::move(conn->socket), via, *parent_trust_, handshake_timeout_);
        if (!wrapped) co_return wrapped.err();
        conn->socket = std::move(*wrapped);
    }
    if (absolute_form) co_return std::move(*conn);

    result<void> opened = result<void>{};
    if (is_socks(via.scheme))
        opened = co_await socks5_connect(conn->socket, via, target, port, handshake_timeout_);
    else
        opened = co_await http_connect(conn->socket, via, target, port, handshake_timeout_);
    if (!opened) {
        tunnel_refused = true;
        co_return opened.err();
    }
    co_return std::move(*conn);
}

}  // namespace iron::upstream_proxy
