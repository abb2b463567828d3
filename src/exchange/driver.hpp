#pragma once
// One request's life, whatever the protocols on either side. drive_exchange() reads top to bottom
// as the phases of a request:
//
//   accept head → identify → guard → buffer body (if a transform asks) → request phase →
//   connect → send → response head → response phase → relay → log
//
// The protocols live in thin adapters, templates resolved at compile time (no virtual call per
// byte):
//   downstream — the client side of one exchange: http/session.cpp (HTTP/1.1: plain listener,
//                MITM, plain HTTP in tunnels, transparent) and h2/server.cpp (HTTP/2 and h2c);
//   upstream   — the origin side: exchange/h1_upstream.hpp (HTTP/1.1 over TCP or TLS, pooled)
//                and h2/upstream.hpp (a stream on a shared HTTP/2 connection).
// Every failure becomes a `failure` and is settled in one place (fail() below, exchange/failure.hpp);
// the audit record is the exchange_state's, written once when the exchange ends.
//
// What a downstream provides (Down):
//   accept_head() -> optional<failure>        the head arrived whole and parsed (else why not)
//   identify(st)                              method and host into the exchange and the record
//   guard(st) -> optional<failure>            fronting, framing and target checks
//   buffer_body(st) -> awaitable<optional<failure>>   the body into st.ex.request_body
//   connect(st, attempt) -> awaitable<variant of routes>   pooled or fresh, h1 or h2 upstream
//   reply_error(status, text), reply_verdict(verdict) -> awaitable<void>   responses the proxy makes
//   abort(failure)                            no reply possible: close or reset, as the protocol does
//   plus what the upstream adapters and relay_response use: read_body, invite_body,
//   send_response_head, send_body, finish_response, switch_protocols.
// What an upstream provides (Up):
//   send_request(down, st) -> awaitable<optional<failure>>   head and body (HTTP/2: body beside)
//   read_response_head(st) -> awaitable<optional<failure>>   into up.head(); 1xx interim skipped
//   read_body(piece) -> awaitable<body_read>                 the response body, piece by piece
//   end(clean) -> awaitable<void>                            back to the pool, or closed
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "exchange/failure.hpp"
#include "exchange/phases.hpp"
#include "pipeline/response_filter.hpp"

namespace iron::exchange {

// One piece of a body as an adapter read it: `data` is valid until the next read.
struct body_read {
    std::string_view data;
    bool last = false;                // the body ends with this piece
    std::optional<failure> failed;    // the read failed: no more pieces
};

// The response head an upstream read, as the downstream sends it on (after the response phase,
// whose header list st.ex.response_headers is the one to send).
struct response_head {
    int status = 0;
    bool no_body = false;        // HEAD, 204, 304, or an empty body already complete
    bool has_trailers = false;   // HTTP/2 origin: trailers will follow the body
};

// Settles a failure: the record says what happened; the client gets an error response when it
// can still have one, else the transfer is cut the way its protocol cuts one.
template <class Down>
boost::asio::awaitable<void> fail(Down& down, exchange_state& st, const failure& f) {
    const settlement s = settle(f, st.response_started);
    record_failure(st, f, s);
    if (!s.reply) {
        down.abort(f);
        co_return;
    }
    // Built before the co_await: GCC 12 mis-compiles a ?: inside a co_await expression.
    std::string text = s.reply_text ? std::string(s.reply_text) : f.detail;
    co_await down.reply_error(static_cast<unsigned>(s.status), std::move(text));
}

// A transform's verdict (reject, stub, error) is the response; the record already has it.
template <class Down>
boost::asio::awaitable<void> answer_verdict(Down& down, const pipeline::verdict& v) {
    co_await down.reply_verdict(v);
}

// The origin's response body to the client, through the response filters a transform attached.
template <class Down, class Up>
boost::asio::awaitable<std::optional<failure>> relay_response(Down& down, Up& up, exchange_state& st,
                                                              const response_head& head) {
    pipeline::response_filter_chain* filter = down.prepare_response(st, head, up);
    if (auto f = co_await down.send_response_head(st, head, up)) co_return f;
    if (head.no_body) co_return co_await down.finish_response(st, up);
    std::string filtered;
    for (;;) {
        body_read piece = co_await up.read_body(st, down);
        if (piece.failed) co_return piece.failed;
        std::string_view out = piece.data;
        if (filter) {
            filtered.clear();
            filter->feed(piece.data, filtered);
            if (piece.last) filter->finish(filtered);
            out = filtered;
        }
        if (auto f = co_await down.send_body(st, out, piece.last)) co_return f;
        if (piece.last) break;
    }
    co_return co_await down.finish_response(st, up);
}

// send → response head → response phase → relay, on one upstream. Nothing: the exchange is over
// (relayed, switched protocols, or answered by a response-phase verdict).
template <class Down, class Up>
boost::asio::awaitable<std::optional<failure>> forward_on(Down& down, Up& up, exchange_state& st) {
    if (auto f = co_await up.send_request(down, st)) co_return f;
    if (auto f = co_await up.read_response_head(st, down)) co_return f;
    const response_head head = up.head();
    if (head.status == 101) co_return co_await down.switch_protocols(st, up);
    if (auto verdict = run_response_phase(st, head.status, up.header_list())) {
        up.abandon();
        co_await answer_verdict(down, *verdict);
        co_return std::nullopt;
    }
    co_return co_await relay_response(down, up, st, head);
}

// One attempt on the route the downstream connected. True: the pooled connection was stale, try
// a fresh one. A failure is settled before the upstream ends (the client hears at once; an HTTP/2
// upstream's end waits for its request body pump, which a reply to the client unblocks); the
// upstream goes back to its pool only when the exchange completed cleanly.
template <class Down, class Up>
boost::asio::awaitable<bool> attempt_on(Down& down, Up& up, exchange_state& st, bool last_attempt) {
    std::optional<failure> f = co_await forward_on(down, up, st);
    const bool retry = f && f->kind == failure_kind::stale && !last_attempt;
    if (f && !retry) co_await fail(down, st, *f);
    co_await up.end(!f);
    co_return retry;
}

template <class Down>
boost::asio::awaitable<void> run_phases(Down& down, exchange_state& st) {
    if (auto f = down.accept_head()) co_return co_await fail(down, st, *f);
    down.identify(st);
    if (auto f = down.guard(st)) co_return co_await fail(down, st, *f);
    if (st.pipeline->wants_request_body(st.ex)) {
        if (auto f = co_await down.buffer_body(st)) co_return co_await fail(down, st, *f);
        if (auto f = check_buffered_body(st)) co_return co_await fail(down, st, *f);
    }
    // Policy runs before any upstream dial (default deny).
    std::optional<pipeline::verdict> verdict;
    if (st.pipeline->awaits_on_request(st.ex))
        verdict = co_await run_request_phase_awaiting(st);  // a transform waits on the network
    else
        verdict = run_request_phase(st);
    if (verdict) co_return co_await answer_verdict(down, *verdict);
    // A pooled connection the origin had closed gets one retry on a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto route = co_await down.connect(st, attempt);
        if (route.index() == 0) co_return co_await fail(down, st, std::get<0>(route));
        // A plain bool, not `if (co_await …)`: GCC 12 mis-compiles a co_await in an if condition.
        const bool stale = co_await down.attempt(st, std::move(route), attempt == 1);
        if (!stale) co_return;
    }
}

// The whole exchange: its phases, then its one audit record.
template <class Down>
boost::asio::awaitable<void> drive_exchange(Down& down, exchange_state& st) {
    co_await run_phases(down, st);
    down.account(st);
    st.emit();
}

}  // namespace iron::exchange
