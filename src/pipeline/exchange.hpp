#pragma once
// What a transform sees and may change: one HTTP exchange (or a synthetic CONNECT / sni-only
// request, reference §6.5). Transforms are pure functions of this object.
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "audit/record.hpp"
#include "core/headers.hpp"

namespace iron::pipeline {

struct exchange {
    // --- request (may be modified by request-phase transforms) ---
    std::string method;       // "GET", "CONNECT", or "" for sni-only
    std::string host;         // Host header / authority as sent, port included if sent
    std::string policy_host;  // normalised host without port: what rules match against
    std::string path;         // decoded path ("" for CONNECT / sni-only)
    std::string raw_path;     // path as sent (percent-encoding kept); what goes upstream
    std::string raw_query;    // query string without '?', as sent (never logged)
    core::header_list request_headers;
    std::string sni;          // TLS SNI, CONNECT host, or ""
    std::string remote_addr;  // client "ip:port"
    std::string mode = "mitm";
    bool is_connect = false;  // synthetic CONNECT/SOCKS5 policy check

    // --- response (response-phase transforms only) ---
    int status = 0;
    core::header_list response_headers;

    // --- trace of the transform currently running; filled by pipeline::run_* ---
    audit::trace* current_trace = nullptr;

    // Attach an annotation to the running transform's trace. Never pass a real secret value.
    void note(std::string_view key, boost::json::value value);
};

}  // namespace iron::pipeline
