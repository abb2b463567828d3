#pragma once
// What a connection needs to serve requests: the immutable, process-wide state (shared by all
// threads, swapped whole on reload) and the per-thread state (resolver, pool), plus what is known
// about this particular client connection.
#include <chrono>
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
}
namespace iron::h2 {
class client_pool;
}

namespace iron::http {

class upstream_pool;

// Read-only after start-up; one instance shared by every worker thread.
struct shared_state {
    config::proxy_config proxy;
    std::string tls_mode = "mitm";
    std::shared_ptr<const pipeline::pipeline> pipeline;
    std::shared_ptr<audit::sink> audit;
    std::shared_ptr<boost::asio::ssl::context> server_tls;  // MITM leaf by SNI
    std::shared_ptr<boost::asio::ssl::context> client_tls;  // upstream verification
};

// Owned by one worker thread; never touched from another.
struct worker_state {
    net::dialer* dialer = nullptr;
    upstream_pool* pool = nullptr;
    h2::client_pool* h2 = nullptr;  // upstreams for HTTP/2 clients (h2 when the origin speaks it)
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
};

}  // namespace iron::http
