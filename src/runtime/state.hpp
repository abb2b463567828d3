#pragma once
// What a connection needs to serve requests: the immutable, process-wide state (shared by all
// threads, swapped whole on reload) and the per-thread state (resolver, pool), plus what is known
// about this particular client connection.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "audit/record.hpp"
#include "audit/sink.hpp"
#include "config/config.hpp"
#include "pipeline/pipeline.hpp"

namespace iron::net {
class dialer;
class live_connection;
class live_connections;
}
namespace iron::h2 {
class client_pool;
}
namespace iron::http {
class upstream_pool;
}
namespace iron::upstream_proxy {
class router;
}

namespace iron::runtime {

// What a reload (management API) replaces: the transform pipeline and the request-body limits
// it works with. The Go proxy keeps the start-up body limits after a reload; here a reload brings
// the new ones too.
struct request_policy {
    std::shared_ptr<const pipeline::pipeline> pipeline;
    std::int64_t max_request_body_bytes = 0;
    std::int64_t max_response_body_bytes = 0;  // buffering a response for a transform; <= 0: no cap
    bool forward_oversize_body = false;  // proxy.oversize_body: forward
    bool reason_body = false;            // proxy.deny_body: reason (responses the proxy makes say why)
};

// Every exchange takes one snapshot of the policy when it starts and keeps it, reference-counted,
// until its audit record: a reload never changes a policy under a request in flight nor frees one
// still in use.
//
// get() is on the per-request path, so it must not make every core write one shared cache line:
// each thread keeps its own reference to the current policy, wrapped in a control block of its
// own (shared_ptr aliasing), and only re-reads the shared slot after a reload bumped the
// generation. Snapshots taken on a thread count references on that thread's block; the block
// keeps the policy alive for as long as any of them lives.
class policy_slot {
public:
    explicit policy_slot(std::shared_ptr<const request_policy> p);
    std::shared_ptr<const request_policy> get() const;
    void set(std::shared_ptr<const request_policy> p);

private:
    const std::uint64_t id_;  // tells slots apart in the per-thread cache (addresses get reused)
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<std::shared_ptr<const request_policy>> current_;
};

// Read-only after start-up (only the policy slot's content changes); one instance shared by
// every worker thread.
struct shared_state {
    config::proxy_config proxy;
    std::string tls_mode = "mitm";
    std::shared_ptr<policy_slot> policies;
    std::shared_ptr<audit::sink> audit;
    std::shared_ptr<boost::asio::ssl::context> server_tls;  // MITM leaf by SNI
    std::shared_ptr<boost::asio::ssl::context> client_tls;  // upstream verification
};

// Owned by one worker thread; never touched from another.
struct worker_state {
    net::dialer* dialer = nullptr;
    upstream_proxy::router* router = nullptr;  // direct, or through the parent proxy the route picks
    http::upstream_pool* pool = nullptr;
    h2::client_pool* h2 = nullptr;  // upstreams for HTTP/2 clients (h2 when the origin speaks it)
    net::live_connections* live = nullptr;  // this worker's client connections (graceful shutdown)
};

// One client connection.
struct connection_info {
    std::shared_ptr<const shared_state> shared;
    worker_state* worker = nullptr;
    std::string remote_addr;                 // "ip:port"
    std::string sni;                         // set after a TLS handshake
    bool tls = false;
    std::optional<audit::tunnel_info> tunnel;  // set for connections inside a CONNECT tunnel
    std::string original_dst;  // proxy.transparent: where the client meant to go ("ip:port")
    net::live_connection* live = nullptr;  // its entry for graceful shutdown (null: never drains)
};

}  // namespace iron::runtime
