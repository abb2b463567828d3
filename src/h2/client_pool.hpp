#pragma once
// Where an HTTP/2 client's streams go upstream, per worker thread: a shared HTTP/2 connection per
// origin when the origin speaks h2 (many streams, one TLS connection), else an HTTP/1.1
// connection from the worker's keep-alive pool. Which one an origin speaks is learnt from ALPN on
// the first dial and remembered for a while, so h1-only origins are not re-probed per request.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/result.hpp"
#include "h2/connection.hpp"
#include "http/upstream.hpp"

namespace iron::h2 {

class client_pool {
public:
    client_pool(boost::asio::any_io_executor ex, http::upstream_pool& h1, std::chrono::steady_clock::duration idle);
    ~client_pool();
    client_pool(const client_pool&) = delete;
    client_pool& operator=(const client_pool&) = delete;

    struct route {
        std::shared_ptr<connection> h2;           // set: open a stream on it
        std::unique_ptr<http::upstream_conn> h1;  // else: speak HTTP/1.1 on this connection
        bool reused = false;                      // h1 came from the idle pool (may be stale)
    };
    // An upstream for host:port. Dials go through the worker's dialer (deny CIDRs). Over TLS the
    // origin chooses h2 or http/1.1 in ALPN; without TLS (`tls` false, for clients that spoke
    // cleartext HTTP/2 with prior knowledge) the origin is spoken to the same way: h2c.
    boost::asio::awaitable<result<route>> get(const std::string& host, std::uint16_t port, bool tls = true);
    // The route get() would give at once, without waiting for a dial: an open HTTP/2 connection,
    // or an idle HTTP/1.1 one to an origin known to speak only that. Nothing: call get().
    std::optional<route> ready(const std::string& host, std::uint16_t port, bool tls);

    std::size_t connection_count() const;

private:
    struct dial_in_progress;
    std::shared_ptr<connection> find_usable(const std::string& key) const;
    void adopt(const std::string& key, std::unique_ptr<http::upstream_conn> conn);
    void adopt(const std::string& key, std::shared_ptr<connection> c);

    boost::asio::any_io_executor ex_;
    http::upstream_pool& h1_;
    std::chrono::steady_clock::duration idle_;
    std::unordered_map<std::string, std::vector<std::shared_ptr<connection>>> h2_;
    std::unordered_map<std::string, std::shared_ptr<dial_in_progress>> dialing_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> h1_only_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace iron::h2
