// c-ares integrated into Asio: c-ares owns its sockets and tells us (sock_state_cb) which ones it
// wants to read or write; we watch those fds with Asio and call ares_process_fd on readiness, and
// drive c-ares' retransmission timeouts with one steady_timer. Nothing here blocks or throws.
#include "net/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace iron::net {

namespace asio = boost::asio;
using address_list = std::vector<asio::ip::address>;

namespace {

// One outstanding lookup. Shared by the awaiting coroutine and the c-ares callback: the callback
// may run after the coroutine gave up (timeout), or during ares_destroy, so neither owns it alone.
// `signal` is both the timeout and the wake-up: the callback cancels it.
struct query_state {
    query_state(asio::any_io_executor ex, std::string h) : signal(std::move(ex)), host(std::move(h)) {}
    asio::steady_timer signal;
    std::string host;
    std::optional<result<address_list>> out;
};

// A socket c-ares asked us to watch. Shared with pending wait handlers, which outlive it in the map.
struct watch {
    explicit watch(asio::any_io_executor ex) : sd(std::move(ex)) {}
    asio::posix::stream_descriptor sd;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;  // an async_wait(wait_read) is pending
    bool writing = false;
    bool released = false;  // c-ares dropped the fd; the number may already belong to a new socket
};

// Go-style wording where users (and audit parsers) already know it.
std::string lookup_error(const std::string& host, int status) {
    std::string why;
    switch (status) {
        case ARES_ENOTFOUND:
        case ARES_ENODATA:
        case ARES_ENONAME:
            why = "no such host";
            break;
        case ARES_ETIMEOUT:
            why = "timeout";
            break;
        case ARES_ESERVFAIL:
            why = "server misbehaving";
            break;
        case ARES_ECONNREFUSED:
            why = "connection refused";
            break;
        case ARES_EDESTRUCTION:
        case ARES_ECANCELLED:
            why = "resolver shut down";
            break;
        default:
            why = ares_strerror(status);
            if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    }
    return "lookup " + host + ": " + why;
}

// The resolver's answer as an error kind: what the client's Proxy-Status reports (dns_error with
// the RCODE, or dns_timeout).
error_kind lookup_kind(int status) {
    switch (status) {
        case ARES_ENOTFOUND:
        case ARES_ENONAME: return error_kind::dns_no_such_host;
        case ARES_ENODATA: return error_kind::dns_no_address;
        case ARES_ETIMEOUT: return error_kind::dns_timeout;
        case ARES_ESERVFAIL: return error_kind::dns_server_failure;
        case ARES_EREFUSED: return error_kind::dns_refused;
        default: return error_kind::dns_other;
    }
}

error lookup_failure(const std::string& host, int status) {
    return make_error(lookup_kind(status), lookup_error(host, status));
}

address_list collect(const ares_addrinfo* res) {
    address_list v4, v6;
    for (const ares_addrinfo_node* n = res ? res->nodes : nullptr; n; n = n->ai_next) {
        if (n->ai_family == AF_INET && n->ai_addr) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
            asio::ip::address a = asio::ip::address_v4(ntohl(sin->sin_addr.s_addr));
            if (std::find(v4.begin(), v4.end(), a) == v4.end()) v4.push_back(a);
        } else if (n->ai_family == AF_INET6 && n->ai_addr) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
            asio::ip::address_v6::bytes_type b;
            std::copy_n(sin6->sin6_addr.s6_addr, 16, b.begin());
            asio::ip::address a = asio::ip::address_v6(b, sin6->sin6_scope_id);
            if (std::find(v6.begin(), v6.end(), a) == v6.end()) v6.push_back(a);
        }
    }
    // IPv4 first: deployments are IPv4-first (the proxy's DNS server answers A queries only), and
    // loopback-only IPv6 setups are common in containers.
    v4.insert(v4.end(), v6.begin(), v6.end());
    return v4;
}

void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) {
    // `arg` is a heap shared_ptr made in start(); c-ares calls this exactly once per query
    // (success, failure, ares_cancel or ares_destroy), so this is where it is freed.
    std::unique_ptr<std::shared_ptr<query_state>> holder(static_cast<std::shared_ptr<query_state>*>(arg));
    query_state& st = **holder;
    if (status == ARES_SUCCESS) {
        address_list addrs = collect(res);
        if (addrs.empty())
            st.out.emplace(lookup_failure(st.host, ARES_ENODATA));
        else
            st.out.emplace(std::move(addrs));
    } else {
        st.out.emplace(lookup_failure(st.host, status));
    }
    if (res) ares_freeaddrinfo(res);
    st.signal.cancel();  // wakes the coroutine if it is waiting; harmless if it already left
}

// Waits for the callback or the timeout, whichever comes first. Static on purpose: the resolver
// may be destroyed while this is suspended, so it touches nothing but the shared state.
asio::awaitable<result<address_list>> await_answer(std::shared_ptr<query_state> st,
                                                   std::chrono::milliseconds timeout) {
    if (!st->out) {  // the callback may have run synchronously (/etc/hosts, immediate failure)
        st->signal.expires_after(timeout);
        co_await st->signal.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (!st->out) co_return make_error(error_kind::dns_timeout, "lookup " + st->host + ": timeout");
    co_return std::move(*st->out);
}

std::once_flag library_once;

}  // namespace

struct resolver::impl {
    explicit impl(asio::any_io_executor e) : ex(e), timer(e), token(std::make_shared<impl*>(this)) {}

    asio::any_io_executor ex;
    ares_channel channel = nullptr;
    asio::steady_timer timer;  // c-ares' next retransmission / query timeout
    std::unordered_map<ares_socket_t, std::shared_ptr<watch>> watches;
    // Handlers capture this token rather than `this`: the destructor nulls it, so a handler that
    // runs after the resolver is gone (as operation_aborted) knows not to touch it.
    std::shared_ptr<impl*> token;

    static void sock_state_cb(void* data, ares_socket_t fd, int readable, int writable) {
        static_cast<impl*>(data)->on_sock_state(fd, readable != 0, writable != 0);
    }

    void on_sock_state(ares_socket_t fd, bool readable, bool writable) {
        auto it = watches.find(fd);
        if (!readable && !writable) {
            // c-ares is about to close the fd: stop watching without closing it ourselves.
            if (it != watches.end()) {
                it->second->released = true;
                it->second->sd.release();  // deregisters from the reactor, aborts pending waits
                watches.erase(it);
            }
            return;
        }
        if (it == watches.end()) {
            auto w = std::make_shared<watch>(ex);
            boost::system::error_code ec;
            w->sd.assign(fd, ec);
            if (ec) return;  // cannot watch it; c-ares' timeouts still end the query
            it = watches.emplace(fd, std::move(w)).first;
        }
        it->second->want_read = readable;
        it->second->want_write = writable;
        arm(fd, it->second);
    }

    // Asio's wait ops re-query readiness when they start (EPOLL_CTL_MOD), so data that arrived
    // between two waits is not missed.
    void arm(ares_socket_t fd, const std::shared_ptr<watch>& w) {
        if (w->want_read && !w->reading) {
            w->reading = true;
            w->sd.async_wait(asio::posix::descriptor_base::wait_read,
                             [t = token, w, fd](boost::system::error_code ec) {
                                 w->reading = false;
                                 if (ec || w->released || !*t) return;
                                 (*t)->on_ready(fd, w, true);
                             });
        }
        if (w->want_write && !w->writing) {
            w->writing = true;
            w->sd.async_wait(asio::posix::descriptor_base::wait_write,
                             [t = token, w, fd](boost::system::error_code ec) {
                                 w->writing = false;
                                 if (ec || w->released || !*t) return;
                                 (*t)->on_ready(fd, w, false);
                             });
        }
    }

    void on_ready(ares_socket_t fd, std::shared_ptr<watch> w, bool read) {
        if (read ? !w->want_read : !w->want_write) return;
        ares_process_fd(channel, read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
        if (!w->released) arm(fd, w);
        arm_timer();
    }

    // Re-armed after everything that can change c-ares' next deadline.
    void arm_timer() {
        timeval tv{};
        if (!ares_timeout(channel, nullptr, &tv)) {
            timer.cancel();  // no queries pending
            return;
        }
        timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
        timer.async_wait([t = token](boost::system::error_code ec) {
            if (ec || !*t) return;  // re-armed (aborted) or resolver gone
            impl* self = *t;
            ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts only
            self->arm_timer();
        });
    }

    void start(const std::shared_ptr<query_state>& st) {
        ares_addrinfo_hints hints{};
        hints.ai_family = AF_UNSPEC;
        // We impose our own order (IPv4 first); c-ares' RFC 6724 sort would cost a socket and a
        // connect() per answer on every lookup for an order we then discard.
        hints.ai_flags = ARES_AI_NOSORT;
        ares_getaddrinfo(channel, st->host.c_str(), nullptr, &hints, &on_addrinfo,
                         new std::shared_ptr<query_state>(st));
        arm_timer();
    }

    ~impl() {
        // Fails every pending query (ARES_EDESTRUCTION: their coroutines wake with an error) and
        // reports each socket as unwanted, which releases its descriptor before c-ares closes it.
        if (channel) ares_destroy(channel);
        for (auto& [fd, w] : watches) {  // defensive: anything c-ares did not report
            w->released = true;
            w->sd.release();
        }
        watches.clear();
        *token = nullptr;
        timer.cancel();
    }
};

resolver::resolver(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
resolver::~resolver() = default;

result<std::unique_ptr<resolver>> resolver::create(asio::any_io_executor ex, const std::string& upstream_resolver) {
    int lib_status = ARES_SUCCESS;
    std::call_once(library_once, [&] { lib_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (lib_status != ARES_SUCCESS) return make_error(std::string("c-ares init: ") + ares_strerror(lib_status));

    auto p = std::make_unique<impl>(ex);
    ares_options opts{};
    int mask = ARES_OPT_SOCK_STATE_CB;
    opts.sock_state_cb = &impl::sock_state_cb;
    opts.sock_state_cb_data = p.get();
    if (!upstream_resolver.empty()) {
        // Go's `dns.upstream_resolver`: UDP with a 5 s timeout; 2 tries like Go / glibc's
        // default, so a dead resolver fails in seconds instead of c-ares' 4 doubling rounds.
        mask |= ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
        opts.timeout = 5000;
        opts.tries = 2;
    }
    int rc = ares_init_options(&p->channel, &opts, mask);
    if (rc != ARES_SUCCESS) {
        p->channel = nullptr;
        return make_error(std::string("c-ares init: ") + ares_strerror(rc));
    }
    if (!upstream_resolver.empty()) {
        std::string text = upstream_resolver;
        rc = ares_set_servers_ports_csv(p->channel, text.c_str());
        ares_addr_port_node* servers = nullptr;
        bool have = rc == ARES_SUCCESS && ares_get_servers_ports(p->channel, &servers) == ARES_SUCCESS && servers;
        if (servers) ares_free_data(servers);
        if (!have)
            return make_error("invalid upstream_resolver \"" + upstream_resolver +
                              "\": must be ip:port, e.g. 127.0.0.1:53 or [::1]:53");
    }
    return std::unique_ptr<resolver>(new resolver(std::move(p)));
}

asio::awaitable<result<address_list>> resolver::resolve(std::string host, std::chrono::milliseconds timeout) {
    // IP literals never reach DNS (and never reach c-ares' search-domain logic).
    std::string_view literal = host;
    if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']')
        literal = literal.substr(1, literal.size() - 2);
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(literal, ec);
    if (!ec) co_return address_list{ip};
    if (host.empty()) co_return lookup_failure(host, ARES_ENOTFOUND);

    auto st = std::make_shared<query_state>(impl_->ex, std::move(host));
    impl_->start(st);
    // From here on only `st` is used: `this` may be destroyed while we wait.
    co_return co_await await_answer(std::move(st), timeout);
}

}  // namespace iron::net
