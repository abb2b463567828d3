#include "http/exchange.hpp"

#include "core/host_glob.hpp"
#include "core/log.hpp"

namespace iron::http {

std::string bytes_note(std::uint64_t n, const char* what) {
    return " after " + std::to_string(n) + " " + what + " bytes";
}

void exchange_state::note_cut_at_shutdown() {
    rec.action = audit::action::error;
    if (response_body_bytes == 0 && request_body_bytes > 0)
        rec.error = "cut at shutdown" + bytes_note(request_body_bytes, "request") + ", before any response byte";
    else
        rec.error = "cut at shutdown" + bytes_note(response_body_bytes, "response");
}

void fill_connection_fields(audit::record& rec, const connection_info& conn) {
    rec.remote_addr = conn.remote_addr;
    rec.sni = conn.sni;
    rec.mode = "mitm";
    rec.tunnel = conn.tunnel;
}

std::optional<std::string> check_request(exchange_state& st, const connection_info& conn,
                                         const std::optional<request_target>& target) {
    std::optional<std::string> decoded;
    auto bad = check_target_and_host(st.ex.host, target, decoded);
    if (decoded) {
        st.ex.path = *decoded;
        st.rec.path = *decoded;
    }
    if (bad) return bad;
    auto hp = core::split_host_port(st.ex.host);
    if (conn.tls && core::normalize_host(hp.host) != core::normalize_host(conn.sni)) {
        log::warn("SNI/Host mismatch", {{"sni", conn.sni}, {"host", st.ex.host}});
        return "SNI and Host header mismatch";
    }
    return std::nullopt;
}

}  // namespace iron::http
