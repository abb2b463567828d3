#pragma once
// One audit line as the command-line readers (`iron-proxy audit`, `allowlist suggest`) see it: the
// fields a person reads, plus whether an allowlist let it through only because of warn mode.
#include <optional>
#include <string>
#include <string_view>

namespace iron::cli {

struct audit_view {
    std::string time;
    std::string action;  // as recorded: allow | reject | stub | error | client_cancel
    bool warned = false; // an allowlist in warn mode let it through (annotation {"action":"warn"})
    int status = 0;
    std::string method, host, path, mode, sni;
    std::string rejected_by, error;
    std::string tunnel_target;  // requests inside a CONNECT / SOCKS5 tunnel
    double duration_ms = 0;

    // "warn" for an allowed request that only warn mode let through, else `action`.
    std::string shown_action() const;
    // The host policy saw: the recorded host without its port, lower-cased, no trailing dot.
    std::string policy_host() const;
};

// What a line is.
enum class line_kind { record, other_log, malformed };

struct parsed_line {
    line_kind kind = line_kind::malformed;
    std::optional<audit_view> record;
};

// An audit record is a JSON object with msg "request" and an "audit" object; other JSON log lines
// (start-up messages written to the same stderr) are `other_log`; anything else is `malformed`.
parsed_line parse_audit_line(std::string_view line);

// Is `host` an IP literal (v4 or v6)?
bool is_ip_literal(std::string_view host);

}  // namespace iron::cli
