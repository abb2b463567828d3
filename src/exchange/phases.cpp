#include "exchange/phases.hpp"

#include "core/host_glob.hpp"
#include "core/log.hpp"
#include "core/port.hpp"

namespace iron::exchange {

std::optional<failure> check_target(exchange_state& st, const runtime::connection_info& conn,
                                    const std::optional<http::request_target>& target) {
    std::optional<std::string> decoded;
    auto bad = http::check_target_and_host(st.ex.host, target, decoded);
    if (decoded) st.set_path(std::move(*decoded));
    if (bad) return client_failure(failure_kind::malformed, std::move(*bad));
    const auto hp = core::split_host_port(st.ex.host);
    st.ex.policy_host = core::normalize_host(hp.host);
    if (conn.tls && st.ex.policy_host != core::normalize_host(conn.sni)) {
        log::warn("SNI/Host mismatch", {{"sni", conn.sni}, {"host", st.ex.host}});
        return client_failure(failure_kind::malformed, "SNI and Host header mismatch");
    }
    st.ex.raw_path = target->path;
    st.ex.raw_query = target->query;
    return std::nullopt;
}

std::optional<failure> check_buffered_body(const exchange_state& st) {
    if (!st.ex.request_body.present || st.ex.request_body.complete || st.policy->forward_oversize_body)
        return std::nullopt;
    return proxy_failure(failure_kind::too_large, "request body larger than proxy.max_request_body_bytes (" +
                                                      std::to_string(st.policy->max_request_body_bytes) + ")");
}

namespace {

std::optional<pipeline::phase_result> conclude_request_phase(exchange_state& st, pipeline::phase_result decided) {
    if (st.ex.body_capture) st.rec.body_capture = st.ex.body_capture;
    if (decided.outcome.what == pipeline::verdict::kind::next) return std::nullopt;
    record_verdict(st.rec, decided, /*request_phase=*/true);
    return decided;
}

}  // namespace

std::optional<pipeline::phase_result> run_request_phase(exchange_state& st) {
    return conclude_request_phase(st, st.pipeline->run_request(st.ex, st.rec.request_transforms));
}

boost::asio::awaitable<std::optional<pipeline::phase_result>> run_request_phase_awaiting(exchange_state& st) {
    pipeline::phase_result decided = co_await st.pipeline->run_request_awaiting(st.ex, st.rec.request_transforms);
    co_return conclude_request_phase(st, std::move(decided));
}

void enter_response_phase(exchange_state& st, int status, core::header_list headers) {
    st.ex.status = status;
    st.ex.response_headers = std::move(headers);
}

std::optional<failure> check_buffered_response(const exchange_state& st) {
    const auto& body = st.ex.response_body;
    if (body.complete || st.policy->forward_oversize_body) return std::nullopt;
    return upstream_failure(failure_kind::response_too_large,
                            "response body larger than proxy.max_response_body_bytes (" +
                                std::to_string(st.policy->max_response_body_bytes) + ")");
}

namespace {

std::optional<pipeline::phase_result> conclude_response_phase(exchange_state& st, pipeline::phase_result decided) {
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        record_verdict(st.rec, decided, /*request_phase=*/false);
        return decided;
    }
    const auto& body = st.ex.response_body;
    if (body.modified) {  // the framing is the proxy's: exact length, whatever the origin's was
        st.ex.response_headers.erase("Transfer-Encoding");
        st.ex.response_headers.set("Content-Length", std::to_string(body.data.size()));
    }
    return std::nullopt;
}

}  // namespace

std::optional<pipeline::phase_result> run_response_phase(exchange_state& st) {
    return conclude_response_phase(st, st.pipeline->run_response(st.ex, st.rec.response_transforms));
}

boost::asio::awaitable<std::optional<pipeline::phase_result>> run_response_phase_awaiting(exchange_state& st) {
    pipeline::phase_result decided = co_await st.pipeline->run_response_awaiting(st.ex, st.rec.response_transforms);
    co_return conclude_response_phase(st, std::move(decided));
}

upstream_target upstream_for(const exchange_state& st, bool tls) {
    if (const auto& r = st.ex.reroute) return {r->host, r->port, r->tls, true};
    upstream_target to{st.ex.policy_host, static_cast<std::uint16_t>(tls ? 443 : 80), tls};
    const auto port = core::split_host_port(st.ex.host).port;
    // check_target let only a valid port through.
    if (!port.empty()) to.port = core::parse_port(port).value_or(to.port);
    return to;
}

failure client_left_while_waiting(exchange_state& st, std::optional<pipeline::phase_result>& decided) {
    if (decided) {  // record_verdict wrote these for a verdict that will not be answered
        st.rec.rejected_by.clear();
        st.rec.stubbed_by.clear();
        st.rec.error.clear();
        decided.reset();
    }
    return client_failure(failure_kind::gone, "client closed the connection while a transform waited");
}

failure dial_failure(const error& e) {
    const auto kind = e.kind == error_kind::loop_detected ? failure_kind::loop : failure_kind::dial_failed;
    return {kind == failure_kind::loop ? source::proxy : source::upstream, kind, e.message, 0, e.kind};
}

void record_verdict(audit::record& rec, const pipeline::phase_result& decided, bool request_phase) {
    using kind = pipeline::verdict::kind;
    const auto& v = decided.outcome;
    switch (v.what) {
        case kind::next:
            return;
        case kind::reject:
            rec.action = audit::action::reject;
            rec.status_code = v.status;
            if (request_phase) rec.rejected_by = decided.decided_by;
            return;
        case kind::stub:
            rec.action = audit::action::stub;
            rec.status_code = v.status;
            if (request_phase) rec.stubbed_by = decided.decided_by;
            return;
        case kind::error:
            rec.action = audit::action::error;
            rec.status_code = 502;
            rec.error = v.error;  // already "transform <name> request: <msg>" (pipeline.cpp)
            return;
    }
}

void record_failure(exchange_state& st, const failure& f, const settlement& s) {
    st.rec.action = s.action;
    if (s.status != 0) st.rec.status_code = s.status;
    if (!f.detail.empty()) st.rec.error = f.detail;
}

}  // namespace iron::exchange
