#include "http/session.hpp"

#include <charconv>
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
#include "http/messages.hpp"
#include "http/respond.hpp"
#include "http/upstream.hpp"
#include "net/client_socket.hpp"

namespace iron::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

constexpr std::size_t relay_chunk_bytes = 32 * 1024;
constexpr std::uint32_t max_header_bytes = 64 * 1024;

using request_parser = bhttp::request_parser<bhttp::buffer_body>;
using response_parser = bhttp::response_parser<bhttp::buffer_body>;

// Everything one exchange carries from its first byte to its audit record.
struct exchange_state {
    pipeline::exchange ex;
    audit::record rec;
    audit::sink& sink;
    bool emitted = false;

    explicit exchange_state(audit::sink& s) : sink(s) {}
    exchange_state(const exchange_state&) = delete;
    // The one audit record; the destructor guarantees it on paths that never reach emit().
    ~exchange_state() { emit(); }
    void emit() {
        if (emitted) return;
        emitted = true;
        rec.finish();
        sink.emit(rec);
    }
};

void fill_connection_fields(audit::record& rec, const connection_info& conn) {
    rec.remote_addr = conn.remote_addr;
    rec.sni = conn.sni;
    rec.mode = "mitm";
    rec.tunnel = conn.tunnel;
}

std::vector<char>& relay_buffer(std::optional<std::vector<char>>& slot) {
    if (!slot) slot.emplace(relay_chunk_bytes);
    return *slot;
}

enum class relay_status { ok, read_failed, write_failed };

// Streams a message body from `in` (already past its header) to `out` (header already written),
// piece by piece as it arrives: nothing is buffered beyond one relay chunk, so SSE and large
// downloads flow through with bounded memory. Deadlines are re-armed for every piece.
template <bool is_request, class In, class Out>
asio::awaitable<relay_status> relay_body(In& in, beast::flat_buffer& in_buf,
                                         bhttp::parser<is_request, bhttp::buffer_body>& p, Out& out,
                                         bhttp::serializer<is_request, bhttp::buffer_body>& sr,
                                         std::vector<char>& buf, net::watchdog& in_dog,
                                         net::watchdog::clock::duration in_idle, net::watchdog& out_dog,
                                         net::watchdog::clock::duration out_idle, std::string& error) {
    do {
        if (!p.is_done()) {
            p.get().body().data = buf.data();
            p.get().body().size = buf.size();
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
    } while (!p.is_done() && !sr.is_done());
    co_return relay_status::ok;
}

// The outcome of forwarding one exchange over one upstream connection.
struct forward_result {
    enum class kind { done, stale, upstream_failed, header_timeout, client_gone } what = kind::done;
    std::string error;
    bool upstream_reusable = false;
    bool client_keep_alive = false;
    bool response_started = false;
};

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
};

// Sends the (already transformed) request head and body upstream, reads the response head, runs
// the response phase and streams the response to the client.
template <class Client, class Upstream>
asio::awaitable<forward_result> forward(Client& client, Upstream& upstream, forward_args a) {
    const shared_state& sh = *a.conn.shared;
    forward_result out;
    auto& req = a.parser.get();
    const bool body_pending = !a.parser.is_done();

    net::watchdog up_dog(a.up.socket().get_executor(), [&up = a.up] { up.close(); });
    const auto up_idle = sh.proxy.upstream_idle_timeout;
    const auto client_idle = sh.proxy.client_idle_timeout;

    bhttp::request_serializer<bhttp::buffer_body> req_sr{req};
    up_dog.expires_after(up_idle);
    if (auto [ec, n] = co_await bhttp::async_write_header(upstream, req_sr, as_tuple(use_awaitable)); ec) {
        out.what = a.reused && !body_pending ? forward_result::kind::stale : forward_result::kind::upstream_failed;
        out.error = "writing request: " + ec.message();
        co_return out;
    }
    if (a.expect_continue && body_pending) {
        // We answer 100-continue ourselves (Expect is not forwarded), so the client sends its
        // body now instead of waiting for an interim response that would never come.
        static constexpr char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
        a.client_dog.expires_after(client_idle);
        auto [ec, n] = co_await asio::async_write(client, asio::buffer(continue_line, sizeof continue_line - 1),
                                                  as_tuple(use_awaitable));
        if (ec) {
            out.what = forward_result::kind::client_gone;
            out.error = ec.message();
            co_return out;
        }
    }
    if (body_pending) {
        std::string err;
        auto rs = co_await relay_body(client, a.client_buf, a.parser, upstream, req_sr, relay_buffer(a.buf),
                                      a.client_dog, client_idle, up_dog, up_idle, err);
        if (rs == relay_status::read_failed) {
            out.what = forward_result::kind::client_gone;
            out.error = "reading request body: " + err;
            co_return out;
        }
        if (rs == relay_status::write_failed) {
            out.what = forward_result::kind::upstream_failed;
            out.error = "writing request body: " + err;
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
            out.what = a.reused && nothing && !body_pending ? forward_result::kind::stale
                                                             : forward_result::kind::upstream_failed;
            out.error = "reading response: " + ec.message();
            co_return out;
        }
        unsigned status = rp->get().result_int();
        if (status >= 100 && status < 200 && status != 101 && interim < 16) continue;
        break;
    }
    auto& res = rp->get();
    if (res.result_int() == 101) {
        out.what = forward_result::kind::upstream_failed;
        out.error = "unexpected 101 Switching Protocols from upstream";
        co_return out;
    }

    // Response phase of the pipeline.
    exchange_state& st = a.st;
    st.ex.status = static_cast<int>(res.result_int());
    st.ex.response_headers = to_header_list(res.base());
    auto decided = sh.pipeline->run_response(st.ex, st.rec.response_transforms);
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
    bool client_keep_alive = a.client_wants_keep_alive;
    res.version(11);
    if (chunked) {
        res.chunked(true);
    } else if (!has_length && !no_body) {
        // Close-delimited upstream body: re-frame as chunked so the client connection survives.
        res.chunked(true);
    }
    res.keep_alive(client_keep_alive);
    st.rec.status_code = static_cast<int>(res.result_int());

    bhttp::response_serializer<bhttp::buffer_body> res_sr{res};
    a.client_dog.expires_after(client_idle);
    auto [hec, hn] = co_await bhttp::async_write_header(client, res_sr, as_tuple(use_awaitable));
    out.response_started = true;
    if (hec) {
        out.what = forward_result::kind::client_gone;
        out.error = "writing response: " + hec.message();
        co_return out;
    }
    if (!no_body || !res_sr.is_done()) {
        if (no_body) {
            rp->get().body().data = nullptr;
            rp->get().body().size = 0;
            rp->get().body().more = false;
        }
        std::string err;
        auto rs = co_await relay_body(upstream, a.up.buffer, *rp, client, res_sr, relay_buffer(a.buf), up_dog,
                                      up_idle, a.client_dog, client_idle, err);
        if (rs == relay_status::read_failed) {
            out.what = forward_result::kind::upstream_failed;
            out.error = "reading response body: " + err;
            out.client_keep_alive = false;
            co_return out;
        }
        if (rs == relay_status::write_failed) {
            out.what = forward_result::kind::client_gone;
            out.error = "writing response body: " + err;
            co_return out;
        }
    }
    out.upstream_reusable = upstream_keep_alive && rp->is_done();
    out.client_keep_alive = client_keep_alive;
    co_return out;
}

// The pre-pipeline checks of §4.2 (audited here, unlike the Go proxy: §14 item 3). Returns the
// 400 message, or nothing when the request may proceed.
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

template <class Client>
asio::awaitable<bool> reply_error(Client& client, exchange_state& st, unsigned status, const std::string& message,
                                  const char* action, bool keep_alive) {
    st.rec.action = action;
    st.rec.status_code = static_cast<int>(status);
    if (st.rec.error.empty()) st.rec.error = message;
    co_return co_await write_error_text(client, status, message, keep_alive);
}

enum class next_step { keep_alive, close };

template <class Client>
asio::awaitable<next_step> serve_exchange(Client& client, beast::flat_buffer& cbuf, connection_info& conn,
                                          net::watchdog& dog, bool first, std::optional<std::vector<char>>& buf) {
    const shared_state& sh = *conn.shared;
    request_parser parser;
    parser.header_limit(max_header_bytes);
    parser.body_limit(boost::none);  // bodies stream through; never buffered here

    dog.expires_after(first ? sh.proxy.client_header_timeout : sh.proxy.client_idle_timeout);
    auto [rec_ec, rn] = co_await bhttp::async_read_header(client, cbuf, parser, as_tuple(use_awaitable));
    if (rec_ec) {
        if (!parser.got_some()) co_return next_step::close;  // idle close between requests: no request
        exchange_state st(*sh.audit);
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

    auto& req = parser.get();
    exchange_state st(*sh.audit);
    fill_connection_fields(st.rec, conn);
    st.ex.method = std::string(req.method_string());
    st.rec.method = st.ex.method;
    st.ex.remote_addr = conn.remote_addr;
    st.ex.sni = conn.sni;
    auto target = parse_request_target(req.target());
    std::string host(req[bhttp::field::host]);
    if (target && !target->authority.empty()) host = target->authority;  // absolute-form wins (RFC 9112 §3.2.2)
    st.ex.host = host;
    st.rec.host = host;
    const bool keep_alive = req.keep_alive();

    if (auto bad = check_request(st, conn, target)) {
        co_await reply_error(client, st, 400, *bad, audit::action::reject, false);
        co_return next_step::close;
    }
    auto hp = core::split_host_port(host);
    st.ex.policy_host = core::normalize_host(hp.host);
    st.ex.raw_path = target->path;
    st.ex.raw_query = target->query;
    st.ex.request_headers = to_header_list(req.base());

    // Request phase: policy runs before any upstream dial (default-deny invariant).
    auto decided = sh.pipeline->run_request(st.ex, st.rec.request_transforms);
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        apply_verdict_to_record(st.rec, decided, /*request_phase=*/true);
        bool ok = co_await write_verdict(client, decided.outcome, keep_alive && parser.is_done());
        co_return ok && keep_alive && parser.is_done() ? next_step::keep_alive : next_step::close;
    }

    // The request as it goes upstream.
    const bool upstream_tls = target->scheme.empty() ? conn.tls : target->scheme == "https";
    std::uint16_t port = upstream_tls ? 443 : 80;
    if (!hp.port.empty()) port = static_cast<std::uint16_t>(std::stoi(hp.port));
    const bool expect_continue = core::iequals(req[bhttp::field::expect], "100-continue");
    const bool chunked_in = parser.chunked();
    replace_fields(req.base(), st.ex.request_headers);
    const bool te_trailers = remove_hop_by_hop(req.base());
    req.erase(bhttp::field::expect);
    if (te_trailers) req.set(bhttp::field::te, "trailers");
    if (req[bhttp::field::host].empty()) req.set(bhttp::field::host, host);
    req.target(st.ex.raw_query.empty() ? st.ex.raw_path : st.ex.raw_path + "?" + st.ex.raw_query);
    req.version(11);
    if (chunked_in) req.chunked(true);
    req.keep_alive(true);

    const std::string dial_host = st.ex.policy_host;
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool reused = false;
        // No co_await inside ?: — GCC 12 destroys the result of such an expression too early.
        result<std::unique_ptr<upstream_conn>> acquired = make_error("not connected");
        if (attempt == 0)
            acquired = co_await conn.worker->pool->acquire(dial_host, port, upstream_tls, reused);
        else
            acquired = co_await conn.worker->pool->connect(dial_host, port, upstream_tls);
        if (!acquired) {
            co_await reply_error(client, st, 502, "bad gateway", audit::action::error, false);
            st.rec.error = acquired.message();
            co_return next_step::close;
        }
        std::unique_ptr<upstream_conn> up = std::move(*acquired);
        forward_args args{parser, cbuf, *up, st, conn, dog, buf, reused, expect_continue, keep_alive};
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
    std::optional<std::vector<char>> relay;  // allocated on the first body, freed with the connection
    for (bool first = true;; first = false) {
        auto step = co_await serve_exchange(client, buffer, conn, dog, first, relay);
        if (step == next_step::close) break;
    }
}

template asio::awaitable<void> serve_http<net::client_socket>(net::client_socket&, connection_info&, net::watchdog&);
template asio::awaitable<void> serve_http<asio::ssl::stream<net::client_socket>>(asio::ssl::stream<net::client_socket>&,
                                                                                connection_info&, net::watchdog&);

}  // namespace iron::http
