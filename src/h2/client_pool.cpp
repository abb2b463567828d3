#include "h2/client_pool.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "h2/transport.hpp"

namespace iron::h2 {

namespace asio = boost::asio;

namespace {

// How long an origin that answered ALPN with http/1.1 is taken at its word.
constexpr auto h1_only_memory = std::chrono::minutes(10);

std::string key_of(const std::string& host, std::uint16_t port, bool tls) {
    return (tls ? "https://" : "h2c://") + host + ":" + std::to_string(port);
}

asio::awaitable<void> run_upstream(std::shared_ptr<connection> c, std::chrono::steady_clock::duration idle) {
    co_await c->run(idle);
}

}  // namespace

// Concurrent streams to an origin not yet connected wait for the one dial instead of each dialing.
struct client_pool::dial_in_progress {
    explicit dial_in_progress(asio::any_io_executor ex) : done(ex) {}
    event done;
    bool finished = false;
};

client_pool::client_pool(asio::any_io_executor ex, http::upstream_pool& h1, std::chrono::steady_clock::duration idle)
    : ex_(ex), h1_(h1), idle_(idle) {}

client_pool::~client_pool() {
    *alive_ = false;
    for (auto& [key, conns] : h2_)
        for (auto& c : conns) c->on_closed(nullptr);
}

std::size_t client_pool::connection_count() const {
    std::size_t n = 0;
    for (const auto& [key, conns] : h2_) n += conns.size();
    return n;
}

std::shared_ptr<connection> client_pool::find_usable(const std::string& key) const {
    auto it = h2_.find(key);
    if (it == h2_.end()) return nullptr;
    // The least busy one: streams spread over the connections a burst opened.
    std::shared_ptr<connection> best;
    for (const auto& c : it->second)
        if (c->usable() && (!best || c->open_streams() < best->open_streams())) best = c;
    return best;
}

void client_pool::adopt(const std::string& key, std::unique_ptr<http::upstream_conn> conn) {
    std::unique_ptr<transport> io;
    if (auto* tls = std::get_if<http::tls_socket>(&conn->stream))
        io = std::make_unique<stream_transport<http::tls_socket>>(std::move(*tls));
    else
        io = std::make_unique<stream_transport<http::tcp_socket>>(std::move(std::get<http::tcp_socket>(conn->stream)));
    adopt(key, std::make_shared<connection>(connection::role::client, ex_, std::move(io), settings{}));
}

void client_pool::adopt(const std::string& key, std::shared_ptr<connection> c) {
    std::weak_ptr<bool> alive = alive_;
    std::weak_ptr<connection> weak = c;
    c->on_closed([this, alive, key, weak] {
        if (alive.expired()) return;
        auto it = h2_.find(key);
        if (it == h2_.end()) return;
        auto self = weak.lock();
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& p) { return !p || p == self || p->dead(); }),
                v.end());
        if (v.empty()) h2_.erase(it);
    });
    h2_[key].push_back(c);
    asio::co_spawn(ex_, run_upstream(c, idle_), asio::detached);
}

std::optional<client_pool::route> client_pool::ready(const std::string& host, std::uint16_t port, bool tls) {
    const std::string key = key_of(host, port, tls);
    if (auto c = find_usable(key)) return route{c, nullptr, false};
    if (dialing_.count(key) != 0) return std::nullopt;  // get() waits for that dial first
    auto known = h1_only_.find(key);
    if (known == h1_only_.end() || std::chrono::steady_clock::now() - known->second >= h1_only_memory) return std::nullopt;
    if (auto idle = h1_.take_idle(host, port, true)) return route{nullptr, std::move(idle), true};
    return std::nullopt;
}

asio::awaitable<result<client_pool::route>> client_pool::get(const std::string& host, std::uint16_t port,
                                                              bool tls) {
    const std::string key = key_of(host, port, tls);
    for (int round = 0; round < 2; ++round) {
        if (auto c = find_usable(key)) co_return route{c, nullptr, false};
        auto wait = dialing_.find(key);
        if (wait == dialing_.end()) break;
        auto d = wait->second;
        while (!d->finished) co_await d->done.wait();
    }

    if (auto known = h1_only_.find(key); known != h1_only_.end()) {
        if (std::chrono::steady_clock::now() - known->second < h1_only_memory) {
            bool reused = false;
            auto conn = co_await h1_.acquire(host, port, true, reused);
            if (!conn) co_return conn.err();
            co_return route{nullptr, std::move(*conn), reused};
        }
        h1_only_.erase(known);
    }

    auto d = std::make_shared<dial_in_progress>(ex_);
    dialing_[key] = d;
    auto dialed = co_await h1_.connect(host, port, tls, /*offer_h2=*/true);
    dialing_.erase(key);
    d->finished = true;
    d->done.notify();
    if (!dialed) co_return dialed.err();
    if (tls && !(*dialed)->h2) {
        h1_only_[key] = std::chrono::steady_clock::now();
        co_return route{nullptr, std::move(*dialed), false};
    }
    adopt(key, std::move(*dialed));
    auto c = find_usable(key);
    if (!c) co_return make_error(error_kind::connection_closed, "http2 connection to " + host + " closed at once");
    co_return route{c, nullptr, false};
}

}  // namespace iron::h2
