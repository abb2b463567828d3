#pragma once
// What every HTTP exchange carries from its first byte to its audit record, whatever the protocol
// on either side: the pipeline's view of the request (pipeline::exchange), the one audit record,
// the policy snapshot both phases run with, and the byte counts a cut transfer reports.
#include <cstdint>
#include <memory>
#include <string>

#include "pipeline/exchange.hpp"
#include "runtime/audit_entry.hpp"
#include "runtime/state.hpp"

namespace iron::net {
class live_connections;
}

namespace iron::runtime {

// Graceful shutdown has begun: the exchange in flight is the connection's last.
bool draining(const connection_info& conn);

// " after N <what> bytes": how far a cut transfer got, for the audit record's error.
std::string bytes_note(std::uint64_t n, const char* what);

struct exchange_state {
    explicit exchange_state(const connection_info& conn);
    exchange_state(const exchange_state&) = delete;
    exchange_state& operator=(const exchange_state&) = delete;
    // The one audit record; the destructor guarantees it on paths that never reach emit().
    ~exchange_state() { emit(); }

    pipeline::exchange ex;
    audit_entry audit;
    audit::record& rec = audit.rec;
    // This exchange's policy: one snapshot for both phases, whatever a reload does meanwhile.
    std::shared_ptr<const request_policy> policy;
    const pipeline::pipeline* pipeline;  // policy->pipeline, kept alive by `policy`
    std::uint64_t request_body_bytes = 0;   // body bytes relayed upstream
    std::uint64_t response_body_bytes = 0;  // body bytes relayed to the client
    bool response_started = false;          // the client has seen our response head

    // The identity of the request, set once for the pipeline exchange and the record alike.
    void set_method(std::string method);
    void set_host(std::string host);
    void set_path(std::string decoded_path);

    // Response filters report what they did to the body (or how far they got), a cut at
    // shutdown is noted, and the record goes out; later calls do nothing.
    void emit();

private:
    // The worker's client connections: once graceful shutdown has cut them, an exchange still
    // running was cut, and its record says so. The registry outlives every exchange.
    const net::live_connections* connections_ = nullptr;
    void note_cut_at_shutdown();
};

}  // namespace iron::runtime
