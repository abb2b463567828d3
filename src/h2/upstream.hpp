#pragma once
// The upstream adapter for an HTTP/2 origin (exchange/driver.hpp says what an adapter provides):
// one stream on a connection shared by the worker's exchanges to that origin. The request body is
// pumped beside the response relay, so bidirectional streams (gRPC) flow both ways at once.
// Deadlines: while the body goes up, client_idle_timeout between its pieces; once it is all out,
// upstream_response_header_timeout for the response head.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "exchange/driver.hpp"
#include "h2/connection.hpp"

namespace iron::h2 {

class h2_downstream;

// The request body pump's progress, shared with the exchange that waits for its end.
struct pump_state {
    explicit pump_state(boost::asio::any_io_executor ex) : done(ex) {}
    event done;
    bool finished = false;
    bool client_reset = false;
    // Told of each piece sent and of the end of the request while the response head is awaited:
    // the head deadline only starts once the whole request is out.
    std::function<void()> on_progress;
    std::function<void()> on_finished;
};

class h2_upstream {
    using failure = exchange::failure;
    using exchange_state = runtime::exchange_state;
    template <class T>
    using awaitable = boost::asio::awaitable<T>;

public:
    h2_upstream(std::shared_ptr<connection> c, const config::proxy_config& proxy);

    awaitable<std::optional<failure>> send_request(h2_downstream& down, exchange_state& st);
    awaitable<std::optional<failure>> read_response_head(exchange_state& st, h2_downstream& down);
    exchange::response_head head() const;
    core::header_list header_list() const;
    const header_block& trailers() const { return stream_->trailers(); }
    bool body_ready() const { return false; }
    awaitable<exchange::body_read> read_body(exchange_state& st, h2_downstream& down);
    // A response-phase verdict replaced the response: the origin's stream is cancelled.
    void abandon();
    // The stream is cancelled unless it ended cleanly.
    void end(bool clean);
    // The request body pump still runs: the exchange waits for it (it holds the downstream).
    bool pumping() const { return !pump_->finished; }
    awaitable<void> pump_done() { return pump_->done.wait(); }

private:
    std::shared_ptr<connection> conn_;
    const config::proxy_config& proxy_;
    std::shared_ptr<stream> stream_;
    std::shared_ptr<pump_state> pump_;
    std::string piece_;
};

}  // namespace iron::h2
