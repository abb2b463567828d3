#include "runtime/audit_entry.hpp"

namespace iron::runtime {

audit_entry::audit_entry(const connection_info& conn, std::string mode) : sink_(*conn.shared->audit) {
    rec.remote_addr = conn.remote_addr;
    rec.sni = conn.sni;
    rec.mode = std::move(mode);
    rec.tunnel = conn.tunnel;
}

void audit_entry::settle(const char* action, int status, std::string error) {
    rec.action = action;
    rec.status_code = status;
    rec.error = std::move(error);
}

void audit_entry::emit() {
    if (emitted_) return;
    emitted_ = true;
    rec.finish();
    sink_.emit(rec);
}

}  // namespace iron::runtime
