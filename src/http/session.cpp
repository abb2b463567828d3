#include "http/session.hpp"

#include <limits>
#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/host_glob.hpp"
#include "core/log.hpp"
#include "http/exchange.hpp"
#include "http/field_allocator.hpp"
#include "http/messages.hpp"
#include "http/request_guard.hpp"
#include "http/request_parser.hpp"
#include "http/respond.hpp"
#include "http/response_filtering.hpp"
#include "http/upstream.hpp"
#include "net/client_socket.hpp"
#include "net/splice.hpp"
#include "net/tls_stream.hpp"

namespace iron::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

// Header fields come from per-thread recycled blocks (http/field_allocator.hpp).
using response_parser = bhttp::response_parser<bhttp::buffer_body, field_allocator<char>>;
template <bool is_request>
using body_parser = bhttp::parser<is_request, bhttp::buffer_body, field_allocator<char>>;
template <bool is_request>
using body_serializer = bhttp::serializer<is_request, bhttp::buffer_body, proxy_fields>;

// Relay buffers are lent for one exchange from a small per-thread stock: an idle keep-alive
// connection holds none (32 KiB each, zero-filled so resident), and busy connections do not
// allocate one per exchange. Each worker thread runs its own connections, so no locking.
constexpr std::size_t relay_stock_max = 16;

std::vector<std::vector<char>>& relay_stock() {
    thread_local std::vector<std::vector<char>> stock;
    return stock;
}

std::vector<char>& relay_buffer(std::optional<std::vector<char>>& slot) {
    if (!slot) {
        auto& stock = relay_stock();
        if (stock.empty()) {
            slot.emplace(relay_chunk_bytes);
        } else {
            slot.emplace(std::move(stock.back()));
            stock.pop_back();
        }
    }
    return *slot;
}

void return_relay_buffer(std::optional<std::vector<char>>& slot) {
    if (!slot) return;
    auto& stock = relay_stock();
    if (stock.size() < relay_stock_max) stock.push_back(std::move(*slot));
    slot.reset();
}

enum class relay_status { ok, read_failed, write_failed };

void close_upstream(void* up) { static_cast<upstream_conn*>(up)->close(); }

// While a session waits for its next request, a drain closes the connection unless part of that
// request already arrived (then it is served, with Connection: close).
class pending_input_watch {
public:
    pending_input_watch(net::live_connection* live, const beast::flat_buffer& buffer) : live_(live) {
        if (live_) live_->watch_pending_input(&has_bytes, &buffer);
    }
    ~pending_input_watch() {
        if (live_) live_->watch_pending_input(nullptr, nullptr);
    }
    pending_input_watch(const pending_input_watch&) = delete;
    pending_input_watch& operator=(const pending_input_watch&) = delete;

private:
    static bool has_bytes(const void* b) { return static_cast<const beast::flat_buffer*>(b)->size() > 0; }
    net::live_connection* live_;
};

// Streams a message body from `in` (already past its header) to `out` (header already written),
// piece by piece as it arrives: nothing is buffered beyond one relay chunk, so SSE and large
// downloads flow through with bounded memory. Deadlines are re-armed for every piece. `relayed`
// grows by the body bytes written to `out` (what a cut transfer's record reports).
template <bool is_request, class In, class Out>
asio::awaitable<relay_status> relay_body(In& in, beast::flat_buffer& in_buf,
                                         body_parser<is_request>& p, Out& out, body_serializer<is_request>& sr,
                                         std::vector<char>& buf, net::watchdog& in_dog,
                                         net::watchdog::clock::duration in_idle, net::watchdog& out_dog,
                                         net::watchdog::clock::duration out_idle, std::string& error,
                                         std::uint64_t& relayed, pipeline::response_filter_chain* filter = nullptr) {
    std::string filtered;  // the filter's output for the current piece (unused without one)
    do {
        std::size_t piece = 0;
        if (!p.is_done()) {
            p.get().body().data = buf.data();
            p.get().body().size = buf.size();
            // Beast reads at most the buffer's spare capacity (floor 512 B): without room, a
            // 10 MiB body went through as 512-byte TLS records (strace, bench/).
            if (in_buf.capacity() - in_buf.size() < buf.size()) in_buf.reserve(in_buf.size() + buf.size());
            in_dog.expires_after(in_idle);
            auto [ec, n] = co_await bhttp::async_read_some(in, in_buf, p, as_tuple(use_awaitable));
            if (ec == bhttp::error::need_buffer) ec = {};
            if (ec) {
                error = in_dog.fired() ? "timeout reading body" : ec.message();
                co_return relay_status::read_failed;
            }
            p.get().body().size = buf.size() - p.get().body().size;
            // An empty piece must be "no data" (nullptr), not a zero-length buffer: the chunked
            // serializer would write a zero-length chunk, which is the end-of-body marker.
            p.get().body().data = p.get().body().size ? buf.data() : nullptr;
            p.get().body().more = !p.is_done();
            if (filter) filter_piece(*filter, p.get().body(), filtered);
            piece = p.get().body().size;  // what goes out: counted as relayed once written
        } else {
            p.get().body().data = nullptr;
            p.get().body().size = 0;
        }
        out_dog.expires_after(out_idle);
        auto [wec, wn] = co_await bhttp::async_write(out, sr, as_tuple(use_awaitable));
        if (wec == bhttp::error::need_buffer) wec = {};
        if (wec) {
            error = out_dog.fired() ? "timeout writing body" : wec.message();
            co_return relay_status::write_failed;
        }
        relayed += piece;
    } while (!p.is_done() && !sr.is_done());
    co_return relay_status::ok;
}

// The interim "100 Continue" the proxy sends for a client that asked with Expect.
template <class Client>
asio::awaitable<boost::system::error_code> write_continue(Client& client) {
    static constexpr char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    auto [ec, n] = co_await asio::async_write(client, asio::buffer(line, sizeof line - 1), as_tuple(use_awaitable));
    co_return ec;
}

// The outcome of forwarding one exchange over one upstream connection.
struct forward_result {
    enum class kind { done, stale, upstream_failed, header_timeout, client_gone } what = kind::done;
    std::string error;
    bool upstream_reusable = false;
    bool client_keep_alive = false;
    bool response_started = false;
};

enum class next_step { keep_alive, close };

struct forward_args {
    request_parser& parser;
    beast::flat_buffer& client_buf;
    upstream_conn& up;
    exchange_state& st;
    connection_info& conn;
    net::watchdog& client_dog;
    std::optional<std::vector<char>>& buf;
    bool reused;
    bool expect_continue;
    bool client_wants_keep_alive;
    const std::string* buffered_body;  // bytes already read from the client (transforms' view), or null
    bool websocket;                     // an allowed Upgrade: websocket handshake
};

// After the origin's 101: the handshake response goes to the client as is, then both sides are
// relayed untouched (reference §10.1) until either closes; the audit record covers the session.
template <class Client, class Upstream>
asio::awaitable<void> relay_websocket(Client& client, Upstream& upstream, forward_args& a, response_parser& rp) {
    auto& res = rp.get();
    redact_upgrade_head(res, a.st.ex);
    body_serializer<false> sr{res};
    auto [ec, n] = co_await bhttp::async_write_header(client, sr, as_tuple(use_awaitable));
    if (ec) co_return;
    // Frames that arrived with the handshake, on either side, go first.
    if (a.up.buffer.size() > 0) {
        auto [wec, wn] = co_await asio::async_write(client, a.up.buffer.data(), as_tuple(use_awaitable));
        if (wec) co_return;
        a.up.buffer.consume(a.up.buffer.size());
    }
    if (a.client_buf.size() > 0) {
        auto [wec, wn] = co_await asio::async_write(upstream, a.client_buf.data(), as_tuple(use_awaitable));
        if (wec) co_return;
        a.client_buf.consume(a.client_buf.size());
    }
    a.client_dog.disarm();
    net::watchdog both(a.up.socket().get_executor(), [&client, &up = a.up] {
        boost::system::error_code ignored;
        client.lowest_layer().close(ignored);
        up.close();
    });
    const auto totals = co_await net::splice(client, upstream, both, a.conn.shared->proxy.client_idle_timeout);
    a.st.request_body_bytes = totals.a_to_b;
    a.st.response_body_bytes = totals.b_to_a;
}

// Sends the (already transformed) request head and body upstream, reads the response head, runs
// the response phase and streams the response to the client.
template <class Client, class Upstream>
asio::awaitable<forward_result> forward(Client& client, Upstream& upstream, forward_args a) {
    const shared_state& sh = *a.conn.shared;
    forward_result out;
    auto& req = a.parser.get();
    const bool body_pending = !a.parser.is_done();
    const bool sends_body = body_pending || a.buffered_body;

    net::watchdog& up_dog = a.up.deadline();  // closes the upstream connection when it fires
    const auto up_idle = sh.proxy.upstream_idle_timeout;
    const auto client_idle = sh.proxy.client_idle_timeout;

    body_serializer<true> req_sr{req};
    up_dog.expires_after(up_idle);
    if (auto [ec, n] = co_await bhttp::async_write_header(upstream, req_sr, as_tuple(use_awaitable)); ec) {
        out.what = a.reused && !sends_body ? forward_result::kind::stale : forward_result::kind::upstream_failed;
        out.error = "writing request: " + ec.message();
        co_return out;
    }
    if (a.expect_continue && body_pending) {
        // We answer 100-continue ourselves (Expect is not forwarded), so the client sends its
        // body now instead of waiting for an interim response that would never come.
        a.client_dog.expires_after(client_idle);
        const boost::system::error_code ec = co_await write_continue(client);
        if (ec) {
            out.what = forward_result::kind::client_gone;
            out.error = ec.message();
            co_return out;
        }
    }
    if (a.buffered_body) {
        // What the pipeline buffered (possibly rewritten) goes first, through the serializer so
        // chunked framing stays right; anything still unread follows from the parser.
        req.body().data = a.buffered_body->empty() ? nullptr : const_cast<char*>(a.buffered_body->data());
        req.body().size = a.buffered_body->size();
        req.body().more = body_pending;
        up_dog.expires_after(up_idle);
        auto [ec, n] = co_await bhttp::async_write(upstream, req_sr, as_tuple(use_awaitable));
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
            out.what = forward_result::kind::upstream_failed;
            out.error = "writing request body: " + ec.message();
            co_return out;
        }
        a.st.request_body_bytes += a.buffered_body->size();
    }
    if (body_pending) {
        std::string err;
        auto rs = co_await relay_body(client, a.client_buf, a.parser, upstream, req_sr, relay_buffer(a.buf),
                                      a.client_dog, client_idle, up_dog, up_idle, err, a.st.request_body_bytes);
        if (rs == relay_status::read_failed) {
            out.what = forward_result::kind::client_gone;
            out.error = "reading request body: " + err + bytes_note(a.st.request_body_bytes, "request");
            co_return out;
        }
        if (rs == relay_status::write_failed) {
            out.what = forward_result::kind::upstream_failed;
            out.error = "writing request body: " + err + bytes_note(a.st.request_body_bytes, "request");
            co_return out;
        }
    }

    // Response head, skipping interim 1xx responses; bounded by upstream_response_header_timeout.
    std::optional<response_parser> rp;
    up_dog.expires_after(sh.proxy.upstream_response_header_timeout);
    for (int interim = 0;; ++interim) {
        rp.emplace();
        rp->header_limit(max_header_bytes);
        rp->body_limit(boost::none);
        if (req.method() == bhttp::verb::head) rp->skip(true);
        auto [ec, n] = co_await bhttp::async_read_header(upstream, a.up.buffer, *rp, as_tuple(use_awaitable));
        if (up_dog.fired()) {
            out.what = forward_result::kind::header_timeout;
            out.error = "timeout awaiting response headers";
            co_return out;
        }
        if (ec) {
            bool nothing = !rp->got_some();
            out.what = a.reused && nothing && !sends_body ? forward_result::kind::stale
                                                             : forward_result::kind::upstream_failed;
            out.error = "reading response: " + ec.message();
            co_return out;
        }
        unsigned status = rp->get().result_int();
        if (status >= 100 && status < 200 && status != 101 && interim < 16) continue;
        break;
    }
    auto& res = rp->get();
    if (auto bad = check_response_head(request_head_of(res.base(), res.version()))) {
        out.what = forward_result::kind::upstream_failed;  // 502; the connection is closed, never pooled
        out.error = "ambiguous response framing: " + std::string(bad->reason);
        co_return out;
    }
    if (res.result_int() == 101) {
        if (!a.websocket) {
            out.what = forward_result::kind::upstream_failed;
            out.error = "unexpected 101 Switching Protocols from upstream";
            co_return out;
        }
        up_dog.disarm();
        a.st.rec.status_code = 101;
        out.response_started = true;
        co_await relay_websocket(client, upstream, a, *rp);
        co_return out;  // done: neither connection is reusable after a protocol switch
    }

    // Response phase of the pipeline.
    exchange_state& st = a.st;
    st.ex.status = static_cast<int>(res.result_int());
    st.ex.response_headers = to_header_list(res.base());
    auto decided = st.pipeline->run_response(st.ex, st.rec.response_transforms);
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        out.upstream_reusable = false;
        out.client_keep_alive = a.client_wants_keep_alive;
        apply_verdict_to_record(st.rec, decided, /*request_phase=*/false);
        bool ok = co_await write_verdict(client, decided.outcome, a.client_wants_keep_alive);
        out.response_started = true;
        if (!ok) out.what = forward_result::kind::client_gone;
        co_return out;
    }

    // Response head to the client: hop-by-hop headers go, framing is ours to choose.
    const bool upstream_keep_alive = res.keep_alive();
    const bool chunked = rp->chunked();
    const bool has_length = rp->content_length().has_value();
    const bool no_body = rp->is_done() || req.method() == bhttp::verb::head;
    replace_fields(res.base(), st.ex.response_headers);
    remove_hop_by_hop(res.base());
    // Shutting down: this response is the connection's last, and says so.
    const bool client_keep_alive = a.client_wants_keep_alive && !draining(a.conn);
    res.version(11);
    if (chunked) {
        res.chunked(true);
    } else if (!has_length && !no_body) {
        // Close-delimited upstream body: re-frame as chunked so the client connection survives.
        res.chunked(true);
    }
    res.keep_alive(client_keep_alive);
    pipeline::response_filter_chain* filter = prepare_filtered_response(res, st.ex.response_filters, no_body);
    st.rec.status_code = static_cast<int>(res.result_int());

    body_serializer<false> res_sr{res};
    a.client_dog.expires_after(client_idle);
    // When body bytes already came in with the head (small responses), the relay's first write
    // carries head and body together: one TLS record and one send instead of two. Otherwise the
    // head goes now, so a slow stream (SSE, long poll) shows its status at once.
    const bool body_ready = !no_body && a.up.buffer.size() > 0;
    if (!body_ready) {
        auto [hec, hn] = co_await bhttp::async_write_header(client, res_sr, as_tuple(use_awaitable));
        if (hec) {
            out.response_started = true;
            out.what = forward_result::kind::client_gone;
            out.error = "writing response: " + hec.message();
            co_return out;
        }
    }
    out.response_started = true;
    if (!no_body || !res_sr.is_done()) {
        if (no_body) {
            rp->get().body().data = nullptr;
            rp->get().body().size = 0;
            rp->get().body().more = false;
        }
        std::string err;
        auto rs = co_await relay_body(upstream, a.up.buffer, *rp, client, res_sr, relay_buffer(a.buf), up_dog,
                                      up_idle, a.client_dog, client_idle, err, st.response_body_bytes, filter);
        if (rs == relay_status::read_failed) {
            out.what = forward_result::kind::upstream_failed;
            out.error = "reading response body: " + err + bytes_note(st.response_body_bytes, "response");
            out.client_keep_alive = false;
            co_return out;
        }
        if (rs == relay_status::write_failed) {
            out.what = forward_result::kind::client_gone;
            out.error = "writing response body: " + err + bytes_note(st.response_body_bytes, "response");
            co_return out;
        }
    }
    out.upstream_reusable = upstream_keep_alive && rp->is_done();
    out.client_keep_alive = client_keep_alive;
    co_return out;
}

template <class Client>
asio::awaitable<bool> reply_error(Client& client, exchange_state& st, unsigned status, const std::string& message,
                                  const char* action, bool keep_alive) {
    st.rec.action = action;
    st.rec.status_code = static_cast<int>(status);
    if (st.rec.error.empty()) st.rec.error = message;
    co_return co_await write_error_text(client, status, message, keep_alive);
}

// Reads the request body for transforms that asked for it (reference §8 with §14 item 1): up to
// the cap into ex.request_body.data. Past the cap the body is marked incomplete and the bytes
// read beyond it are kept in `overflow`, so the original body can still be forwarded whole.
template <class Client>
asio::awaitable<result<void>> buffer_request_body(Client& client, beast::flat_buffer& cbuf, request_parser& parser,
                                                  pipeline::body_buffer& body, std::string& overflow,
                                                  std::int64_t cap, net::watchdog& dog,
                                                  net::watchdog::clock::duration idle) {
    body.present = true;
    const std::size_t limit = cap > 0 ? static_cast<std::size_t>(cap) : std::numeric_limits<std::size_t>::max();
    std::string read;
    while (!parser.is_done() && read.size() <= limit) {
        const std::size_t used = read.size();
        read.resize(used + relay_chunk_bytes);
        parser.get().body().data = read.data() + used;
        parser.get().body().size = relay_chunk_bytes;
        dog.expires_after(idle);
        auto [ec, n] = co_await bhttp::async_read_some(client, cbuf, parser, as_tuple(use_awaitable));
        if (ec == bhttp::error::need_buffer) ec = {};
        read.resize(used + relay_chunk_bytes - parser.get().body().size);
        if (ec) co_return make_error(dog.fired() ? "timeout reading request body" : ec.message());
    }
    body.complete = parser.is_done() && read.size() <= limit;
    if (!body.complete) {
        overflow = read.substr(limit);
        read.resize(limit);
    }
    body.data = std::move(read);
    co_return ok();
}

template <class Client>
asio::awaitable<next_step> serve_exchange(Client& client, beast::flat_buffer& cbuf, connection_info& conn,
                                          net::watchdog& dog, bool first, std::optional<std::vector<char>>& buf) {
    const shared_state& sh = *conn.shared;
    request_parser parser;
    limit_client_request(parser);

    dog.expires_after(first ? sh.proxy.client_header_timeout : sh.proxy.client_idle_timeout);
    auto [rec_ec, rn] = co_await bhttp::async_read_header(client, cbuf, parser, as_tuple(use_awaitable));
    if (rec_ec) {
        if (!parser.got_some()) co_return next_step::close;  // idle close between requests: no request
        exchange_state st(conn);
        fill_connection_fields(st.rec, conn);
        if (dog.fired()) {
            st.rec.action = audit::action::reject;
            st.rec.status_code = 408;
            st.rec.error = "timeout reading request header";
        } else {
            co_await reply_error(client, st, 400, "malformed request: " + rec_ec.message(), audit::action::reject, false);
        }
        co_return next_step::close;
    }
    dog.expires_after(sh.proxy.client_idle_timeout);
    net::live_connection::work_scope in_flight(conn.live);  // a drain lets this exchange finish

    auto& req = parser.get();
    exchange_state st(conn);
    fill_connection_fields(st.rec, conn);
    st.ex.method = std::string(req.method_string());
    st.rec.method = st.ex.method;
    st.ex.remote_addr = conn.remote_addr;
    st.ex.sni = conn.sni;
    auto target = parse_request_target(req.target());
    std::string host(req[bhttp::field::host]);
    if (target && !target->authority.empty()) host = target->authority;  // absolute-form wins (RFC 9112 §3.2.2)
    if (!conn.original_dst.empty()) {
        // Transparent interception: a request that names no host goes where the client was
        // connecting (policy then sees the IP literal); a Host without a port keeps that port.
        if (host.empty()) host = conn.original_dst;
        else if (core::split_host_port(host).port.empty() && !conn.tls)
            host += ":" + core::split_host_port(conn.original_dst).port;
    }
    st.ex.host = host;
    st.rec.host = host;
    const bool keep_alive = req.keep_alive() && !draining(conn);

    // Framing and Host lines first: nothing below may trust Beast's reading of an ambiguous head.
    if (auto bad = check_request_head(request_head_of(req.base(), req.version()))) {
        co_await reply_error(client, st, bad->status, std::string(bad->reason), audit::action::reject, false);
        co_return next_step::close;
    }
    if (auto bad = check_request(st, conn, target)) {
        co_await reply_error(client, st, 400, *bad, audit::action::reject, false);
        co_return next_step::close;
    }
    // RFC 9112 §3.2.2: absolute-form authority replaces Host before transforms/audit/origin see it.
    if (!target->authority.empty()) req.set(bhttp::field::host, target->authority);
    auto hp = core::split_host_port(host);
    st.ex.policy_host = core::normalize_host(hp.host);
    st.ex.raw_path = target->path;
    st.ex.raw_query = target->query;
    st.ex.request_headers = to_header_list(req.base());

    std::string body_overflow;
    bool continue_sent = false;
    if (st.pipeline->wants_request_body(st.ex)) {
        if (core::iequals(req[bhttp::field::expect], "100-continue") && !parser.is_done()) {
            // The body is needed before the upstream is even chosen: invite it now.
            const boost::system::error_code cec = co_await write_continue(client);
            if (cec) co_return next_step::close;
            continue_sent = true;
        }
        auto buffered = co_await buffer_request_body(client, cbuf, parser, st.ex.request_body, body_overflow,
                                                     st.policy->max_request_body_bytes, dog, sh.proxy.client_idle_timeout);
        if (!buffered) {
            st.rec.action = audit::action::client_cancel;
            st.rec.status_code = 200;
            st.rec.error = "reading request body: " + buffered.message();
            co_return next_step::close;
        }
        if (!st.ex.request_body.complete && !st.policy->forward_oversize_body) {
            // Never forward a body the transforms could only partly see (§14 item 1): fail closed.
            st.rec.error = "request body larger than proxy.max_request_body_bytes (" +
                           std::to_string(st.policy->max_request_body_bytes) + ")";
            co_await reply_error(client, st, 413, "request body too large", audit::action::reject, false);
            co_return next_step::close;
        }
    }

    // Request phase: policy runs before any upstream dial (default-deny invariant).
    auto decided = st.pipeline->run_request(st.ex, st.rec.request_transforms);
    if (st.ex.body_capture) st.rec.body_capture = st.ex.body_capture;
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        apply_verdict_to_record(st.rec, decided, /*request_phase=*/true);
        bool ok = co_await write_verdict(client, decided.outcome, keep_alive && parser.is_done());
        co_return ok && keep_alive && parser.is_done() ? next_step::keep_alive : next_step::close;
    }

    // The request as it goes upstream.
    const bool upstream_tls = target->scheme.empty() ? conn.tls : target->scheme == "https";
    std::uint16_t port = upstream_tls ? 443 : 80;
    if (!hp.port.empty()) port = static_cast<std::uint16_t>(std::stoi(hp.port));
    const bool expect_continue = !continue_sent && core::iequals(req[bhttp::field::expect], "100-continue");
    const bool chunked_in = parser.chunked();
    const bool websocket = is_websocket_upgrade(req.base());
    replace_fields(req.base(), st.ex.request_headers);
    const bool te_trailers = remove_hop_by_hop(req.base());
    if (websocket) {
        // The one hop-by-hop exchange that must reach the origin: the protocol switch itself.
        req.set(bhttp::field::connection, "Upgrade");
        req.set(bhttp::field::upgrade, "websocket");
    }
    req.erase(bhttp::field::expect);
    if (te_trailers) req.set(bhttp::field::te, "trailers");
    if (req[bhttp::field::host].empty()) req.set(bhttp::field::host, host);
    req.target(st.ex.raw_query.empty() ? st.ex.raw_path : st.ex.raw_path + "?" + st.ex.raw_query);
    req.version(11);
    const auto& body = st.ex.request_body;
    std::string outgoing_body;  // what goes upstream ahead of any unread remainder
    if (body.present) {
        outgoing_body = body.data + body_overflow;
        if (body.complete) {
            // Fully buffered (maybe rewritten): exact length, whatever the client's framing was.
            req.erase(bhttp::field::transfer_encoding);
            if (!outgoing_body.empty() || req.method() == bhttp::verb::post || req.method() == bhttp::verb::put ||
                req.method() == bhttp::verb::patch || parser.content_length())
                req.set(bhttp::field::content_length, std::to_string(outgoing_body.size()));
        } else if (chunked_in) {
            req.chunked(true);
        }
    } else if (chunked_in) {
        req.chunked(true);
    }
    req.keep_alive(true);

    const std::string dial_host = st.ex.policy_host;
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool reused = false;
        // No co_await inside ?: — GCC 12 destroys the result of such an expression too early.
        result<std::unique_ptr<upstream_conn>> acquired = make_error("not connected");
        if (attempt == 0) {
            // A pooled connection is taken without a coroutine: the keep-alive common case.
            if (auto idle = conn.worker->pool->take_idle(dial_host, port, upstream_tls)) {
                acquired = result<std::unique_ptr<upstream_conn>>(std::move(idle));
                reused = true;
            } else {
                acquired = co_await conn.worker->pool->connect(dial_host, port, upstream_tls);
            }
        } else {
            acquired = co_await conn.worker->pool->connect(dial_host, port, upstream_tls);
        }
        if (!acquired) {
            const auto reply = reply_for_connect_failure(acquired.err());
            co_await reply_error(client, st, reply.status, reply.text, audit::action::error, false);
            st.rec.error = acquired.message();
            co_return next_step::close;
        }
        std::unique_ptr<upstream_conn> up = std::move(*acquired);
        net::live_connection::cut_hook cut_closes_upstream(conn.live, &close_upstream, up.get());
        forward_args args{parser, cbuf, *up, st, conn, dog, buf, reused, expect_continue, keep_alive,
                          body.present ? &outgoing_body : nullptr, websocket};
        // Plain if/else, not std::visit with a lambda: GCC 12 mis-handles lambda temporaries
        // inside co_await expressions (ASan showed a use-after-free).
        forward_result fr;
        if (auto* plain = std::get_if<tcp_socket>(&up->stream))
            fr = co_await forward(client, *plain, args);
        else
            fr = co_await forward(client, std::get<tls_socket>(up->stream), args);

        switch (fr.what) {
            case forward_result::kind::done:
                if (fr.upstream_reusable) conn.worker->pool->release(std::move(up));
                else up->close();
                co_return fr.client_keep_alive ? next_step::keep_alive : next_step::close;
            case forward_result::kind::stale:
                up->close();
                continue;  // the pooled connection had been closed by the origin: one fresh try
            case forward_result::kind::header_timeout:
                up->close();
                st.rec.error = fr.error;
                co_await reply_error(client, st, 504, "gateway timeout", audit::action::error, false);
                co_return next_step::close;
            case forward_result::kind::upstream_failed:
                up->close();
                if (fr.response_started) {
                    st.rec.action = audit::action::error;
                    st.rec.error = fr.error;
                } else {
                    st.rec.error = fr.error;
                    co_await reply_error(client, st, 502, "bad gateway", audit::action::error, false);
                }
                co_return next_step::close;
            case forward_result::kind::client_gone:
                up->close();
                st.rec.action = audit::action::client_cancel;
                if (!fr.error.empty()) st.rec.error = fr.error;  // how far it got, if it left mid-transfer
                if (!fr.response_started) st.rec.status_code = 200;
                co_return next_step::close;
        }
    }
    co_await reply_error(client, st, 502, "bad gateway", audit::action::error, false);
    co_return next_step::close;
}

}  // namespace

template <class Stream>
asio::awaitable<void> serve_http(Stream& client, connection_info& conn, net::watchdog& dog) {
    beast::flat_buffer buffer;
    std::optional<std::vector<char>> relay;  // lent while an exchange relays a body
    pending_input_watch watch(conn.live, buffer);
    for (bool first = true;; first = false) {
        auto step = co_await serve_exchange(client, buffer, conn, dog, first, relay);
        return_relay_buffer(relay);
        if (step == next_step::close || draining(conn)) break;
        // A request body made the read buffer grow to a relay chunk: give that back between
        // exchanges (nothing is lost: it is empty unless the client pipelined).
        if (buffer.size() == 0 && buffer.capacity() > 4096) buffer.shrink_to_fit();
    }
}

template asio::awaitable<void> serve_http<net::client_socket>(net::client_socket&, connection_info&, net::watchdog&);
template asio::awaitable<void> serve_http<net::tls_stream<net::client_socket>>(net::tls_stream<net::client_socket>&,
                                                                              connection_info&, net::watchdog&);

}  // namespace iron::http
