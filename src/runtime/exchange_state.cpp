#include "runtime/exchange_state.hpp"

#include "net/live_connections.hpp"

namespace iron::runtime {

bool draining(const connection_info& conn) { return conn.live && conn.live->draining(); }

std::string bytes_note(std::uint64_t n, const char* what) {
    return " after " + std::to_string(n) + " " + what + " bytes";
}

exchange_state::exchange_state(const connection_info& conn)
    : audit(conn), policy(conn.shared->policies->get()), pipeline(policy->pipeline.get()) {
    if (conn.worker) connections_ = conn.worker->live;
    ex.remote_addr = conn.remote_addr;
    ex.sni = conn.sni;
    if (conn.tunnel) ex.tunnel = &*conn.tunnel;
}

void exchange_state::set_method(std::string method) {
    rec.method = method;
    ex.method = std::move(method);
}

void exchange_state::set_host(std::string host) {
    rec.host = host;
    ex.host = std::move(host);
}

void exchange_state::set_path(std::string decoded_path) {
    rec.path = decoded_path;
    ex.path = std::move(decoded_path);
}

void exchange_state::emit() {
    if (audit.emitted()) return;
    if (!ex.response_filters.empty()) ex.response_filters.annotate(rec.response_transforms);
    if (ex.mcp_record) ex.mcp_record->write(rec);
    if (connections_ && connections_->cut_done()) note_cut_at_shutdown();
    audit.emit();
}

// The shutdown timeout cut this exchange: action error, the status the client was sent (if any)
// stays, and the error says how far the transfer got.
void exchange_state::note_cut_at_shutdown() {
    rec.action = audit::action::error;
    if (response_body_bytes == 0 && request_body_bytes > 0)
        rec.error = "cut at shutdown" + bytes_note(request_body_bytes, "request") + ", before any response byte";
    else
        rec.error = "cut at shutdown" + bytes_note(response_body_bytes, "response");
}

}  // namespace iron::runtime
