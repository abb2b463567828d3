#pragma once
// Waiting for remote sources' first fetch on a worker's event loop (see remote_source.hpp).
#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "secrets/source.hpp"

namespace iron::secrets {

// True when any of `sources` is still waiting for its first fetch.
bool any_pending(const std::vector<const source*>& sources);

// Asks every pending source for its value and waits, without blocking the thread, until none is
// pending or `timeout` passed. What the fetch found is then read with current() as usual.
boost::asio::awaitable<void> await_fetched(std::vector<const source*> sources, std::chrono::nanoseconds timeout);

// The Go proxy's bound on one fetch, plus a little for the fetch thread to publish.
inline constexpr std::chrono::nanoseconds first_fetch_wait = std::chrono::seconds(31);

}  // namespace iron::secrets
