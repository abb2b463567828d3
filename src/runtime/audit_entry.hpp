#pragma once
// The one way an audit record is written: every request, tunnel handshake, sni-only connection
// and intercepted connection that failed early gets exactly one record, emitted by emit() or, on
// any path that returns before it, by the destructor.
#include <string>

#include "audit/record.hpp"
#include "audit/sink.hpp"
#include "runtime/state.hpp"

namespace iron::runtime {

class audit_entry {
public:
    // The record starts with the connection's fields: remote_addr, sni, mode and tunnel.
    explicit audit_entry(const connection_info& conn, std::string mode = "mitm");
    ~audit_entry() { emit(); }
    audit_entry(const audit_entry&) = delete;
    audit_entry& operator=(const audit_entry&) = delete;

    audit::record rec;

    // Sets the outcome in one step: what happened, the status the client saw (0: none) and why.
    void settle(const char* action, int status, std::string error = {});
    void emit();
    bool emitted() const { return emitted_; }
    // The connection closed before it sent a byte of a request: there is nothing to record.
    void dismiss() { emitted_ = true; }

private:
    audit::sink& sink_;
    bool emitted_ = false;
};

}  // namespace iron::runtime
