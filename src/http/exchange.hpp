#pragma once
// What every HTTP exchange carries, whatever the protocol on either side (HTTP/1.1 in session.cpp,
// HTTP/2 in src/h2): the pipeline's view, the audit record that is emitted exactly once, and the
// pre-pipeline request checks of reference §4.2.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "audit/record.hpp"
#include "audit/sink.hpp"
#include "http/context.hpp"
#include "http/messages.hpp"
#include "http/request_parser.hpp"  // max_header_bytes
#include "net/live_connections.hpp"
#include "pipeline/exchange.hpp"

namespace iron::http {

// Bodies relayed to or from an HTTP/1.1 peer move in pieces of this size.
inline constexpr std::size_t relay_chunk_bytes = 32 * 1024;

// Graceful shutdown has begun: the exchange in flight is the connection's last.
inline bool draining(const connection_info& conn) { return conn.live && conn.live->draining(); }

// " after N <what> bytes": how far a cut transfer got, for the audit record's error.
std::string bytes_note(std::uint64_t n, const char* what);

// Everything one exchange carries from its first byte to its audit record.
struct exchange_state {
    pipeline::exchange ex;
    audit::record rec;
    audit::sink& sink;
    // This exchange's policy: one snapshot for both phases, whatever a reload does meanwhile.
    std::shared_ptr<const request_policy> policy;
    const pipeline::pipeline* pipeline;  // policy->pipeline, kept alive by `policy`
    bool emitted = false;
    // The worker's client connections: once graceful shutdown has cut them, an exchange still
    // running was cut, and its record says so (see emit()). The registry outlives every frame.
    const net::live_connections* connections = nullptr;
    std::uint64_t request_body_bytes = 0;   // body bytes relayed upstream
    std::uint64_t response_body_bytes = 0;  // body bytes relayed to the client

    explicit exchange_state(const shared_state& sh)
        : sink(*sh.audit), policy(sh.policies->get()), pipeline(policy->pipeline.get()) {}
    explicit exchange_state(const connection_info& conn) : exchange_state(*conn.shared) {
        if (conn.worker) connections = conn.worker->live;
    }
    exchange_state(const exchange_state&) = delete;
    exchange_state& operator=(const exchange_state&) = delete;
    // The one audit record; the destructor guarantees it on paths that never reach emit().
    ~exchange_state() { emit(); }
    void emit() {
        if (emitted) return;
        emitted = true;
        // Response filters report what they did to the body once it is over (or cut short).
        if (!ex.response_filters.empty()) ex.response_filters.annotate(rec.response_transforms);
        if (connections && connections->cut_done()) note_cut_at_shutdown();
        rec.finish();
        sink.emit(rec);
    }
    // The shutdown timeout cut this exchange: action error, the status the client was sent (if
    // any) stays, and the error says how far the transfer got.
    void note_cut_at_shutdown();
};

// remote_addr, sni, mode and tunnel of the record, from the client connection.
void fill_connection_fields(audit::record& rec, const connection_info& conn);

// The pre-pipeline checks of §4.2 (audited, unlike the Go proxy: §14 item 3): target form, Host
// present, path decodable and free of dot segments, port valid, Host equal to the SNI on TLS.
// Fills ex.path / rec.path. Returns the 400 message, or nothing when the request may proceed.
std::optional<std::string> check_request(exchange_state& st, const connection_info& conn,
                                         const std::optional<request_target>& target);

}  // namespace iron::http
