#pragma once
// The protocol-neutral phases of one exchange (exchange/driver.hpp calls them in order): the
// identity of the request, the checks on its target, the body-size rule, the request and response
// phases of the transform pipeline, where the request goes, and how a failure is recorded. Nothing
// here reads or writes a socket.
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/headers.hpp"
#include "core/result.hpp"
#include "exchange/failure.hpp"
#include "http/messages.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/transform.hpp"
#include "runtime/exchange_state.hpp"

namespace iron::exchange {

using runtime::exchange_state;

// The target's checks, done before any transform sees the request: target form, Host present,
// path decodable and free of dot segments, port valid, and on TLS the Host naming the SNI (a
// request may not ask one TLS name for another host). Sets the decoded path (recorded even when a
// later check fails), the policy host and the raw path and query.
std::optional<failure> check_target(exchange_state& st, const runtime::connection_info& conn,
                                    const std::optional<http::request_target>& target);

// After a transform had the body buffered: a body larger than the cap was seen only in part, so
// it is refused (413) unless proxy.oversize_body says to forward it anyway.
std::optional<failure> check_buffered_body(const exchange_state& st);

// The request phase of the pipeline: nothing when every transform let the request continue, else
// the verdict to answer with and the transform that decided (already in the record).
std::optional<pipeline::phase_result> run_request_phase(exchange_state& st);
// The same for a pipeline with a transform that waits on the network for this request
// (pipeline::awaits_on_request): the worker serves other connections meanwhile.
boost::asio::awaitable<std::optional<pipeline::phase_result>> run_request_phase_awaiting(exchange_state& st);

// The origin's status and headers into the exchange, for the response phase (transforms may
// change them in st.ex.status and st.ex.response_headers).
void enter_response_phase(exchange_state& st, int status, core::header_list headers);

// After a transform had the response body buffered: a body over proxy.max_response_body_bytes was
// seen only in part, so the response is refused (502) unless proxy.oversize_body says to forward
// it anyway (untouched, after the part already read).
std::optional<failure> check_buffered_response(const exchange_state& st);

// The response phase: nothing to go on relaying, else the verdict that replaces the response.
// A body a transform replaced gets its Content-Length here.
std::optional<pipeline::phase_result> run_response_phase(exchange_state& st);
// The same for a pipeline with a transform that waits on the network for this response.
boost::asio::awaitable<std::optional<pipeline::phase_result>> run_response_phase_awaiting(exchange_state& st);

// Where the request goes: the policy host, the port the Host named (else the scheme's), and TLS
// when the client spoke TLS to us or named https:// in an absolute-form target — or, when an MCP
// gateway route took the request, the operator's endpoint it names (st.ex.reroute).
struct upstream_target {
    std::string host;
    std::uint16_t port = 0;
    bool tls = false;
    bool operator_endpoint = false;  // exempt from the deny list, pooled apart (ex.reroute)
};
upstream_target upstream_for(const exchange_state& st, bool tls);

// The client left while a transform waited on the network for it (pipeline::client_watch): the
// phase's verdict, if any, is dropped (nobody is there to answer) and the exchange ends as the
// client's cancel.
failure client_left_while_waiting(exchange_state& st, std::optional<pipeline::phase_result>& decided);

// Fills action, status_code and rejected_by / stubbed_by (request phase) or error from a verdict
// that ended a phase (tunnel handshakes and sni-only connections record theirs this way too).
void record_verdict(audit::record& rec, const pipeline::phase_result& decided, bool request_phase);

// A failed dial: 508 when it would have reached this proxy itself, else 502.
failure dial_failure(const error& e);

// Writes a settled failure into the record: action, status (unless it keeps the one the client
// already saw) and the failure's detail as the error.
void record_failure(exchange_state& st, const failure& f, const settlement& s);

}  // namespace iron::exchange
