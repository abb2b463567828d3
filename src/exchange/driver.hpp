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
//   upstream   — the origin side: http/upstream_h1.hpp (HTTP/1.1 over TCP or TLS, pooled)
//                and h2/upstream.hpp (a stream on a shared HTTP/2 connection).
// Every failure becomes a `failure` and is settled in one place (fail() below, exchange/failure.hpp);
// the audit record is the exchange_state's, written once when the exchange ends.
//
// What a downstream provides (Down):
//   accept_head() -> optional<failure>        the head arrived whole and parsed (else why not)
//   identify(st)                              method and host into the exchange and the record
//   guard(st) -> optional<failure>            fronting, framing and target checks
//   buffer_body(st) -> awaitable<optional<failure>>   the body into st.ex.request_body
//   route, pooled(st) -> optional<route>      an idle pooled upstream, taken without waiting
//   connect(st, attempt) -> awaitable<route>  a dial (or a shared HTTP/2 connection), h1 or h2
//   attempt(st, route, last) -> awaitable<bool>   attempt_on() with the upstream the route names
//   tie_upstream(up) -> guard                 while it lives, the client's leaving (or a graceful
//                                             shutdown's cut) closes the upstream at once
//   watch_client(st) -> guard                 while it lives (a transform waits on the network),
//                                             the client's leaving is told to st.ex.watch
//   reply_error(proxy_reply), reply_verdict(proxy_reply) -> awaitable<void>   responses the proxy
//                                             makes (exchange/proxy_status.hpp builds them)
//   abort(failure)                            no reply possible: close or reset, as the protocol does
//   the response: prepare_response, start_response, head_waits / send_response_head, send_body,
//   response_unfinished, finish_response, switch_protocols (see respond()); plus what the
//   upstream adapters use: read_body, invite_body.
// What an upstream provides (Up):
//   send_request(down, st) -> awaitable<optional<failure>>   head and body (HTTP/2: body beside)
//   read_response_head(st, down) -> awaitable<optional<failure>>   into head(); 1xx skipped
//   read_body(st, down) -> awaitable<body_read>              the response body, piece by piece
//   end(clean)                                               back to the pool, or closed
//   pumping() / pump_done() -> awaitable<void>               a request body still going up beside
//
// Coroutine frames cost a few hundred instructions each, so every step that usually completes at
// once is a plain function (pooled, start_response, finish_response, end), and a step that only
// sometimes waits says so first (head_waits, response_unfinished, pumping).
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/awaitable.hpp>

#include "exchange/failure.hpp"
#include "exchange/phases.hpp"
#include "exchange/proxy_status.hpp"
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
    // Built before the co_await: GCC 12 mis-handles temporaries inside a co_await expression.
    proxy_reply reply = reply_to(f, s, st.policy->reason_body);
    co_await down.reply_error(std::move(reply));
}

// The origin's body into st.ex.response_body for the transforms that asked, up to
// proxy.max_response_body_bytes. Past the cap the body is marked incomplete and what was read is
// kept: with proxy.oversize_body: forward the relay sends it, then the rest, untouched.
template <class Down, class Up>
boost::asio::awaitable<std::optional<failure>> buffer_response_body(Down& down, Up& up, exchange_state& st) {
    auto& held = st.ex.response_body;
    held.present = true;
    const std::int64_t cap = st.policy->max_response_body_bytes;
    const std::size_t limit = cap > 0 ? static_cast<std::size_t>(cap) : static_cast<std::size_t>(-1);
    bool ended = false;
    while (!ended && held.data.size() <= limit) {
        body_read piece = co_await up.read_body(st, down);
        if (piece.failed) co_return piece.failed;
        held.data.append(piece.data);
        ended = piece.last;
    }
    held.complete = ended && held.data.size() <= limit;
    held.more_to_read = !ended;
    co_return check_buffered_response(st);
}

// The response phase when a transform asked to have the body buffered or to wait on the network
// for this response (a coroutine frame only then; the common path calls run_response_phase).
template <class Down, class Up>
boost::asio::awaitable<std::optional<failure>> response_phase_waiting(Down& down, Up& up, exchange_state& st,
                                                                      pipeline::response_needs needs, bool no_body,
                                                                      std::optional<pipeline::phase_result>& decided) {
    if (needs.body && !no_body) {
        std::optional<failure> f = co_await buffer_response_body(down, up, st);
        if (f) co_return f;
    }
    if (!needs.awaits) {
        decided = run_response_phase(st);
        co_return std::nullopt;
    }
    [[maybe_unused]] const auto watching = down.watch_client(st);
    decided = co_await run_response_phase_awaiting(st);
    if (st.ex.client_left()) co_return client_left_while_waiting(st, decided);
    co_return std::nullopt;
}

// The request phase when a transform waits on the network for this request: the worker serves
// other connections meanwhile, and a client that leaves meanwhile cancels the wait and ends the
// exchange (no dial).
template <class Down>
boost::asio::awaitable<std::optional<pipeline::phase_result>> request_phase_waiting(Down& down, exchange_state& st,
                                                                                   std::optional<failure>& f) {
    [[maybe_unused]] const auto watching = down.watch_client(st);
    std::optional<pipeline::phase_result> decided = co_await run_request_phase_awaiting(st);
    if (st.ex.client_left()) f = client_left_while_waiting(st, decided);
    co_return decided;
}

// The response, once its head is in: a protocol switch, a response-phase verdict in its place, or
// the origin's head (with the status and headers the transforms left) and body to the client
// through the response filters a transform attached. A body buffered for the response phase goes
// first (as a transform replaced it, or as it was), then whatever the origin still sends.
template <class Down, class Up>
boost::asio::awaitable<std::optional<failure>> respond(Down& down, Up& up, exchange_state& st) {
    response_head head = up.head();
    if (head.status == 101) co_return co_await down.switch_protocols(st, up);
    enter_response_phase(st, head.status, up.header_list());
    std::optional<pipeline::phase_result> decided;
    const pipeline::response_needs needs = st.pipeline->needs_on_response(st.ex);
    if (needs.body || needs.awaits) {
        std::optional<failure> f = co_await response_phase_waiting(down, up, st, needs, head.no_body, decided);
        if (f) co_return f;
    } else {
        decided = run_response_phase(st);
    }
    if (decided) {
        up.abandon();
        proxy_reply reply = reply_to(*decided, st.ex.policy_host, st.policy->reason_body);
        co_await down.reply_verdict(std::move(reply));
        co_return std::nullopt;
    }
    head.status = st.ex.status;
    pipeline::response_filter_chain* filter = down.prepare_response(st, head, up);
    if (auto f = down.start_response(st, head, up)) co_return f;
    if (down.head_waits())  // HTTP/1.1 with no body bytes ready to carry the head
        if (auto f = co_await down.send_response_head()) co_return f;
    std::string filtered;
    bool replay = st.ex.response_body.present;  // the buffered body goes first
    for (bool last = head.no_body; !last;) {
        body_read piece;
        if (replay) {
            replay = false;
            piece.data = st.ex.response_body.data;
            piece.last = !st.ex.response_body.more_to_read;
        } else {
            piece = co_await up.read_body(st, down);
        }
        if (piece.failed) co_return piece.failed;
        std::string_view out = piece.data;
        if (filter) {
            filtered.clear();
            filter->feed(piece.data, filtered);
            if (piece.last) filter->finish(filtered);
            out = filtered;
        }
        if (auto f = co_await down.send_body(st, out, piece.last)) co_return f;
        last = piece.last;
    }
    if (down.response_unfinished())  // HTTP/1.1: a held-back head or the end of a chunked body
        if (auto f = co_await down.send_body(st, {}, true)) co_return f;
    down.finish_response(st, up);
    co_return std::nullopt;
}

// One attempt on the upstream the downstream connected (taken by value: the adapters' attempt()
// returns this coroutine without a frame of its own). True: the pooled connection was stale, try
// a fresh one. A failure is settled before the upstream ends (the client hears at once; an HTTP/2
// upstream's body pump waits for a reply to the client); the upstream goes back to its pool only
// when the exchange completed cleanly.
template <class Down, class Up>
boost::asio::awaitable<bool> attempt_on(Down& down, Up up, exchange_state& st, bool last_attempt) {
    [[maybe_unused]] const auto tied = down.tie_upstream(up);
    std::optional<failure> f = co_await up.send_request(down, st);
    if (!f) f = co_await up.read_response_head(st, down);
    if (!f) f = co_await respond(down, up, st);
    const bool retry = f && f->kind == failure_kind::stale && !last_attempt;
    if (f && !retry) co_await fail(down, st, *f);
    up.end(!f);
    while (up.pumping()) co_await up.pump_done();
    co_return retry;
}

// The head's phases, none of which waits: accepted whole, identified, guarded.
template <class Down>
std::optional<failure> admit(Down& down, exchange_state& st) {
    if (auto f = down.accept_head()) return f;
    down.identify(st);
    return down.guard(st);
}

// The whole exchange, then its one audit record. One coroutine for the phases (a frame per phase
// would cost more than the phases themselves): each phase runs only while nothing has failed or
// answered yet, and the end settles what did.
template <class Down>
boost::asio::awaitable<void> drive_exchange(Down& down, exchange_state& st) {
    std::optional<failure> f = admit(down, st);
    if (!f && st.pipeline->wants_request_body(st.ex)) {
        f = co_await down.buffer_body(st);
        if (!f) f = check_buffered_body(st);
    }
    // Policy runs before any upstream dial (default deny).
    std::optional<pipeline::phase_result> decided;
    if (!f && st.pipeline->awaits_on_request(st.ex))
        decided = co_await request_phase_waiting(down, st, f);  // a transform waits on the network
    else if (!f)
        decided = run_request_phase(st);
    // A pooled connection the origin had closed gets one retry on a fresh one.
    bool retry = !f && !decided;
    for (int attempt = 0; retry && attempt < 2; ++attempt) {
        std::optional<typename Down::route> route;
        if (attempt == 0) route = down.pooled(st);
        if (!route) route = co_await down.connect(st, attempt);
        if (auto* dial_failed = std::get_if<failure>(&*route)) {
            f = std::move(*dial_failed);
            break;
        }
        retry = co_await down.attempt(st, std::move(*route), attempt == 1);
    }
    if (f) co_await fail(down, st, *f);
    else if (decided) {
        proxy_reply reply = reply_to(*decided, st.ex.policy_host, st.policy->reason_body);
        co_await down.reply_verdict(std::move(reply));
    }
    down.account(st);
    st.emit();
}

}  // namespace iron::exchange
