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
#include "pipeline/exchange.hpp"

namespace iron::http {

// Bodies relayed to or from an HTTP/1.1 peer move in pieces of this size.
inline constexpr std::size_t relay_chunk_bytes = 32 * 1024;

// Everything one exchange carries from its first byte to its audit record.
struct exchange_state {
    pipeline::exchange ex;
    audit::record rec;
    audit::sink& sink;
    // This exchange's policy: one snapshot for both phases, whatever a reload does meanwhile.
    std::shared_ptr<const request_policy> policy;
    const pipeline::pipeline* pipeline;  // policy->pipeline, kept alive by `policy`
    bool emitted = false;

    explicit exchange_state(const shared_state& sh)
        : sink(*sh.audit), policy(sh.policies->get()), pipeline(policy->pipeline.get()) {}
    exchange_state(const exchange_state&) = delete;
    exchange_state& operator=(const exchange_state&) = delete;
    // The one audit record; the destructor guarantees it on paths that never reach emit().
    ~exchange_state() { emit(); }
    void emit() {
        if (emitted) return;
        emitted = true;
        // Response filters report what they did to the body once it is over (or cut short).
        if (!ex.response_filters.empty()) ex.response_filters.annotate(rec.response_transforms);
        rec.finish();
        sink.emit(rec);
    }
};

// remote_addr, sni, mode and tunnel of the record, from the client connection.
void fill_connection_fields(audit::record& rec, const connection_info& conn);

// The pre-pipeline checks of §4.2 (audited, unlike the Go proxy: §14 item 3): target form, Host
// present, path decodable and free of dot segments, port valid, Host equal to the SNI on TLS.
// Fills ex.path / rec.path. Returns the 400 message, or nothing when the request may proceed.
std::optional<std::string> check_request(exchange_state& st, const connection_info& conn,
                                         const std::optional<request_target>& target);

}  // namespace iron::http
