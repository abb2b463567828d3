#pragma once
// Graceful shutdown, run by the main thread after the first SIGINT/SIGTERM (see
// net/live_connections.hpp for what a drain does to each connection):
//   1. every worker closes its listeners (new connections are refused) and begins draining:
//      idle connections close at once, exchanges and relays in flight go on;
//   2. the main thread waits until no client connection is left, or `timeout` passes;
//   3. at the timeout, or at a second SIGINT/SIGTERM, every worker cuts what is still open
//      (its records say "cut at shutdown") and the main thread waits a moment for those records.
// The caller then stops the event loops; each worker writes its last audit batch as it returns.
#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include "net/live_connections.hpp"

namespace iron::app {

// One worker as the drain sees it.
struct drain_worker {
    boost::asio::io_context* ioc;
    net::live_connections* connections;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>>* acceptors;
};

struct drain_result {
    std::size_t cut = 0;   // connections cut (timeout or second signal)
    int second_signal = 0;  // the signal that forced the cut, 0 if none came
};

// Blocks the calling thread (it runs `signals_ctx`, on which `signals` waits for a second signal)
// until the drain is over.
drain_result drain(const std::vector<drain_worker>& workers, boost::asio::io_context& signals_ctx,
                   boost::asio::signal_set& signals, std::chrono::nanoseconds timeout);

}  // namespace iron::app
