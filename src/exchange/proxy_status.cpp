#include "exchange/proxy_status.hpp"

namespace iron::exchange {

namespace {

using kind = pipeline::verdict::kind;

// The DNS failures RFC 9209 reports as dns_error, with the RCODE (RFC 8499 names) when known.
// A name with no address is NOERROR with an empty answer ("NODATA").
const char* rcode_of(error_kind cause) {
    switch (cause) {
        case error_kind::dns_no_such_host: return "NXDOMAIN";
        case error_kind::dns_no_address: return "NOERROR";
        case error_kind::dns_server_failure: return "SERVFAIL";
        case error_kind::dns_refused: return "REFUSED";
        default: return nullptr;
    }
}

// A dial that failed (502 unless it timed out): the RFC 9209 type for its cause.
proxy_status dial_status(error_kind cause) {
    switch (cause) {
        case error_kind::address_denied: return {"destination_ip_prohibited", {}, {}};
        case error_kind::dns_timeout: return {"dns_timeout", {}, {}};
        case error_kind::dns_no_such_host:
        case error_kind::dns_no_address:
        case error_kind::dns_server_failure:
        case error_kind::dns_refused: return {"dns_error", std::string("; rcode=") + sf_string(rcode_of(cause)), {}};
        case error_kind::dns_other: return {"dns_error", {}, {}};
        case error_kind::connect_refused: return {"connection_refused", {}, {}};
        case error_kind::connect_timeout: return {"connection_timeout", {}, {}};
        case error_kind::unreachable: return {"destination_ip_unroutable", {}, {}};
        case error_kind::tls_certificate: return {"tls_certificate_error", {}, {}};
        case error_kind::tls_handshake: return {"tls_protocol_error", {}, {}};
        case error_kind::connection_closed: return {"connection_terminated", {}, {}};
        case error_kind::loop_detected: return {"proxy_loop_detected", {}, {}};
        case error_kind::parent_auth: return {"proxy_configuration_error", {}, {}};
        case error_kind::protocol_error: return {"http_protocol_error", {}, {}};
        default: return {"destination_unavailable", {}, {}};
    }
}

// An origin that failed after the connection was made, before any response reached the client.
const char* broken_type(error_kind cause) {
    switch (cause) {
        case error_kind::connection_closed: return "connection_terminated";
        case error_kind::response_incomplete: return "http_response_incomplete";
        case error_kind::response_too_large: return "http_response_header_section_size";
        case error_kind::parent_auth: return "proxy_configuration_error";
        default: return "http_protocol_error";
    }
}

proxy_status type_of(const failure& f) {
    switch (f.kind) {
        // Refused on the client's account: the proxy answers instead of the origin.
        case failure_kind::malformed:
        case failure_kind::not_implemented:
        case failure_kind::method_not_allowed:
        case failure_kind::head_timeout:
        case failure_kind::body_timeout:
        case failure_kind::gone:
        case failure_kind::too_large: return {"http_request_error", {}, {}};
        case failure_kind::loop: return {"proxy_loop_detected", {}, {}};
        case failure_kind::dial_failed: return dial_status(f.cause);
        case failure_kind::response_timeout: return {"http_response_timeout", {}, {}};
        case failure_kind::response_too_large: return {"http_response_body_size", {}, {}};
        case failure_kind::broken:
        case failure_kind::stale: return {broken_type(f.cause), {}, {}};
    }
    return {};
}

}  // namespace

std::string client_text(std::string_view reason) {
    const bool cut = reason.size() > max_reason_chars;
    if (cut) reason = reason.substr(0, max_reason_chars);
    std::string out;
    out.reserve(reason.size() + 3);
    for (char c : reason) out += (c >= 0x20 && c <= 0x7e) ? c : '?';
    if (cut) out += "...";
    return out;
}

std::string sf_string(std::string_view s) {
    std::string out = "\"";
    for (char c : client_text(s)) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

std::string proxy_status::field_value() const {
    std::string out = "iron-proxy; error=";
    out += error;
    out += params;
    if (!details.empty()) out += "; details=" + sf_string(details);
    return out;
}

proxy_status status_of(const failure& f) {
    proxy_status st = type_of(f);
    st.details = f.detail;
    if (st.details.empty())
        if (const char* text = settle(f, false).reply_text) st.details = text;
    return st;
}

proxy_status status_of(const pipeline::phase_result& decided, std::string_view host) {
    const auto& v = decided.outcome;
    // An empty decided_by: the proxy's own stage after the transforms (the MCP policy) decided.
    const std::string by = decided.decided_by.empty() ? std::string("proxy policy") : "transform " + decided.decided_by;
    switch (v.what) {
        case kind::stub: return {"proxy_internal_response", {}, "answered by " + by};
        case kind::error: return {"proxy_internal_error", {}, by + " failed" + (v.reason.empty() ? "" : ": " + v.reason)};
        case kind::reject:
        case kind::next: break;
    }
    std::string why = v.reason.empty() ? "denied by " + by : v.reason;
    if (!host.empty()) why += ": " + std::string(host);
    return {"http_request_denied", {}, std::move(why)};
}

namespace {

void add_status(proxy_reply& r, const proxy_status& why) { r.headers.set("Proxy-Status", why.field_value()); }

std::string reason_line(const proxy_status& why) { return "iron-proxy: " + client_text(why.details) + "\n"; }

// Go's http.Error shape: text/plain; charset=utf-8, nosniff, the message and a newline.
proxy_reply error_text(int status, const std::string& message) {
    proxy_reply r{status, {}, message.empty() ? std::string() : message + "\n"};
    r.headers.add("Content-Type", "text/plain; charset=utf-8");
    r.headers.add("X-Content-Type-Options", "nosniff");
    return r;
}

}  // namespace

proxy_reply reply_to(const failure& f, const settlement& s, bool reason_body) {
    const proxy_status why = status_of(f);
    proxy_reply r = error_text(s.status, s.reply_text ? std::string(s.reply_text) : f.detail);
    if (reason_body) r.body = reason_line(why);
    add_status(r, why);
    return r;
}

proxy_reply reply_to(const pipeline::phase_result& decided, std::string_view host, bool reason_body) {
    const auto& v = decided.outcome;
    const proxy_status why = status_of(decided, host);
    proxy_reply r;
    if (v.what == kind::error) {
        r = error_text(502, "bad gateway");
    } else {
        r.status = v.status;
        r.body = v.body;  // empty unless the transform wrote one (a 403 stays empty, as in Go)
        for (const auto& h : v.headers.entries()) {
            if (core::iequals(h.name, "Content-Length") || core::iequals(h.name, "Transfer-Encoding") ||
                core::iequals(h.name, "Connection"))
                continue;
            r.headers.add(h.name, h.value);
        }
        if (!r.headers.contains("Content-Type")) r.headers.add("Content-Type", "text/plain");
    }
    // A stub is a response by design, and a body the transform wrote is its own: both stay.
    if (reason_body && v.what != kind::stub && v.body.empty()) r.body = reason_line(why);
    add_status(r, why);
    return r;
}

}  // namespace iron::exchange
