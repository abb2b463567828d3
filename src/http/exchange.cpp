#include "http/exchange.hpp"

#include <charconv>

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
    if (!target) return "malformed request target";
    if (st.ex.host.empty()) return "missing Host header";
    auto decoded = decode_path(target->path);
    if (!decoded) return "malformed path";
    st.ex.path = *decoded;
    st.rec.path = *decoded;
    if (has_dot_segment(*decoded)) return "path contains dot segments";
    auto hp = core::split_host_port(st.ex.host);
    if (hp.host.empty()) return "missing Host header";
    if (!hp.port.empty()) {
        unsigned port = 0;
        auto [p, ec] = std::from_chars(hp.port.data(), hp.port.data() + hp.port.size(), port);
        if (ec != std::errc{} || p != hp.port.data() + hp.port.size() || port == 0 || port > 65535)
            return "invalid port in Host header";
    }
    if (conn.tls && core::normalize_host(hp.host) != core::normalize_host(conn.sni)) {
        log::warn("SNI/Host mismatch", {{"sni", conn.sni}, {"host", st.ex.host}});
        return "SNI and Host header mismatch";
    }
    return std::nullopt;
}

}  // namespace iron::http
