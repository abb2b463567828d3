#include "h2/server.hpp"

#include <functional>

#include <limits>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nghttp2/nghttp2.h>

#include "core/host_glob.hpp"
#include "core/log.hpp"
#include "h2/client_pool.hpp"
#include "h2/connection.hpp"
#include "h2/headers.hpp"
#include "h2/transport.hpp"
#include "http/exchange.hpp"
#include "http/messages.hpp"
#include "http/respond.hpp"
#include "http/response_filtering.hpp"
#include "http/upstream.hpp"
#include "net/live_connections.hpp"

namespace iron::h2 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

using http::max_header_bytes;
using http::relay_chunk_bytes;

using client_tls = net::tls_stream<net::client_socket>;

// Everything one stream's exchange needs, kept alive by shared_ptr while any coroutine uses it.
struct stream_exchange {
    stream_exchange(std::shared_ptr<connection> c, std::shared_ptr<stream> s,
                    std::shared_ptr<http::connection_info> info)
        : client_conn(std::move(c)), client(std::move(s)), conn(std::move(info)), st(*conn) {}

    std::shared_ptr<connection> client_conn;
    std::shared_ptr<stream> client;
    std::shared_ptr<http::connection_info> conn;
    http::exchange_state st;
    std::string authority;
    std::string body_prefix;  // request body bytes already read from the client (buffered for transforms)
    bool body_prefix_is_whole = false;  // body_prefix is the complete request body
};

const http::shared_state& shared_of(const stream_exchange& x) { return *x.conn->shared; }

// The record's error when the client's stream closed while its response was being relayed.
std::string client_left_error(const stream_exchange& x) {
    return "writing response body: client closed the stream" + http::bytes_note(x.client->body_bytes_sent(), "response");
}

// A proxy-made response (error text or a transform's verdict) on the client's stream.
asio::awaitable<void> send_simple(stream_exchange& x, const bhttp::response<bhttp::string_body>& res) {
    header_block head{{":status", std::to_string(res.result_int())}};
    for (const auto& f : res)
        if (!is_connection_specific(f.name_string(), f.value()))
            head.push_back(header{std::string(f.name_string()), std::string(f.value())});
    for (auto& h : head)
        for (auto& ch : h.name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool has_body = !res.body().empty();
    if (!x.client_conn->submit_response(*x.client, head, has_body)) co_return;
    if (has_body) {
        co_await x.client->write(res.body());
        x.client->finish();
    }
}

asio::awaitable<void> reply_error(stream_exchange& x, unsigned status, const std::string& message, const char* action) {
    x.st.rec.action = action;
    x.st.rec.status_code = static_cast<int>(status);
    if (x.st.rec.error.empty()) x.st.rec.error = message;
    co_await send_simple(x, http::make_error_text(status, message, true));
}

// Reads the client's request body for transforms that asked for it, up to the cap (§8 with §14
// item 1). Past the cap the rest stays unread on the stream and `complete` is false.
asio::awaitable<bool> buffer_request_body(stream_exchange& x) {
    auto& body = x.st.ex.request_body;
    body.present = true;
    const std::int64_t cap = x.st.policy->max_request_body_bytes;
    const std::size_t limit = cap > 0 ? static_cast<std::size_t>(cap) : std::numeric_limits<std::size_t>::max();
    std::string piece;
    std::string read;
    for (;;) {
        if (read.size() > limit) break;
        auto status = co_await x.client->read(piece);
        if (status == stream::read_status::reset) co_return false;
        if (status == stream::read_status::end) break;
        read += piece;
    }
    body.complete = x.client->peer_done() && read.size() <= limit;
    x.body_prefix = read;
    x.body_prefix_is_whole = body.complete;
    if (!body.complete) read.resize(limit);
    body.data = std::move(read);
    co_return true;
}

// What goes upstream first: the transforms' (possibly rewritten) body when complete; otherwise
// the original bytes read so far, then the unread rest of the stream.
std::string outgoing_prefix(stream_exchange& x) {
    const auto& body = x.st.ex.request_body;
    if (!body.present) return {};
    return body.complete ? body.data : x.body_prefix;
}

bool request_has_body(stream_exchange& x) { return !x.client->fully_read() || !outgoing_prefix(x).empty(); }

// --- HTTP/2 upstream ---

struct pump_state {
    explicit pump_state(asio::any_io_executor ex) : done(ex) {}
    event done;
    bool finished = false;
    bool client_reset = false;
    bool upstream_failed = false;
    // Told of each piece sent and of the end of the request, while forward_h2 waits for the
    // response head: the head deadline only starts once the whole request is out.
    std::function<void()> on_progress;
    std::function<void()> on_finished;
};

// Client request body (prefix first) → upstream stream, then the client's trailers. Runs beside
// the response relay so bidirectional streams (gRPC) flow both ways at once.
asio::awaitable<void> pump_request_h2(std::shared_ptr<stream_exchange> x, std::shared_ptr<stream> up,
                                      std::shared_ptr<connection> up_conn, std::shared_ptr<pump_state> ps) {
    std::string piece = outgoing_prefix(*x);
    bool ok = true;
    if (!piece.empty()) ok = co_await up->write(piece);
    if (ok) x->st.request_body_bytes += piece.size();
    while (ok && !(x->body_prefix_is_whole && x->st.ex.request_body.present)) {
        auto status = co_await x->client->read(piece);
        if (status == stream::read_status::end) break;
        if (status == stream::read_status::reset) {
            ps->client_reset = true;
            ok = false;
            break;
        }
        ok = co_await up->write(piece);
        if (!ok) ps->upstream_failed = true;
        else x->st.request_body_bytes += piece.size();
        if (ps->on_progress) ps->on_progress();
    }
    if (ok) {
        up->finish(x->client->trailers());
    } else if (ps->client_reset) {
        up_conn->reset(*up, NGHTTP2_CANCEL);
    }
    ps->finished = true;
    if (ps->on_finished) ps->on_finished();
    ps->done.notify();
}

header_block upstream_request_head(stream_exchange& x) {
    const auto& ex = x.st.ex;
    header_block head{{":method", ex.method},
                      {":scheme", x.conn->tls ? "https" : "http"},
                      {":authority", x.authority},
                      {":path", ex.raw_query.empty() ? ex.raw_path : ex.raw_path + "?" + ex.raw_query}};
    core::header_list headers = ex.request_headers;
    if (ex.request_body.present && ex.request_body.complete) {
        headers.erase("content-length");
        headers.add("content-length", std::to_string(ex.request_body.data.size()));
    }
    append_h2_fields(headers, head);
    return head;
}

// A watchdog that resets `up` when the exchange stalls before the response head: while the
// request body is still going up, when no piece moved for client_idle_timeout; once it is all
// out, when the head takes longer than upstream_response_header_timeout. (Counting the head
// timeout from the start of the request cut every upload longer than that timeout with a 504.)
struct header_deadline {
    header_deadline(std::shared_ptr<connection> c, std::shared_ptr<stream> s, const http::shared_state& sh,
                    pump_state& ps)
        : dog(c->executor(), [c, s, this] {
              fired = true;
              c->reset(*s, NGHTTP2_CANCEL);
          }),
          pump(ps) {
        const auto head_timeout = sh.proxy.upstream_response_header_timeout;
        const auto idle_timeout = sh.proxy.client_idle_timeout;
        if (ps.finished) {
            dog.expires_after(head_timeout);
            return;
        }
        uploading = true;
        dog.expires_after(idle_timeout);
        ps.on_progress = [this, idle_timeout] { dog.expires_after(idle_timeout); };
        ps.on_finished = [this, head_timeout] {
            uploading = false;
            dog.expires_after(head_timeout);
        };
    }
    ~header_deadline() {
        pump.on_progress = nullptr;
        pump.on_finished = nullptr;
    }
    header_deadline(const header_deadline&) = delete;
    header_deadline& operator=(const header_deadline&) = delete;

    net::watchdog dog;
    pump_state& pump;
    bool uploading = false;  // the request body was still going up
    bool fired = false;
};

// Response phase of the pipeline; true when the exchange may go on to stream the response.
asio::awaitable<bool> run_response_phase(stream_exchange& x, int status, const core::header_list& headers) {
    x.st.ex.status = status;
    x.st.ex.response_headers = headers;
    auto decided = x.st.pipeline->run_response(x.st.ex, x.st.rec.response_transforms);
    if (decided.outcome.what == pipeline::verdict::kind::next) co_return true;
    http::apply_verdict_to_record(x.st.rec, decided, /*request_phase=*/false);
    co_await send_simple(x, http::make_verdict_response(decided.outcome, true));
    co_return false;
}

asio::awaitable<void> forward_h2(std::shared_ptr<stream_exchange> x, std::shared_ptr<connection> up_conn) {
    auto& rec = x->st.rec;
    if (x->client->closed()) {
        rec.action = audit::action::client_cancel;
        rec.status_code = 200;
        rec.error = "stream reset by client before forwarding";
        co_return;
    }
    std::string error;
    auto up = up_conn->submit_request(upstream_request_head(*x), request_has_body(*x), error);
    if (!up) {
        rec.error = error;
        co_await reply_error(*x, 502, "bad gateway", audit::action::error);
        co_return;
    }
    // The client's cancel (or its connection dying) cancels the upstream stream at once, even
    // while we wait for the response head.
    x->client->on_close([up_conn, up] { up_conn->reset(*up, NGHTTP2_CANCEL); });
    auto ps = std::make_shared<pump_state>(up_conn->executor());
    if (request_has_body(*x))
        asio::co_spawn(up_conn->executor(), pump_request_h2(x, up, up_conn, ps), asio::detached);
    else
        ps->finished = true;

    bool got_head = false;
    bool late = false;
    bool upload_stalled = false;
    {
        header_deadline deadline(up_conn, up, shared_of(*x), *ps);
        got_head = co_await up->wait_headers();
        late = deadline.fired;
        upload_stalled = late && deadline.uploading;
    }
    if (!got_head) {
        if (x->client->closed()) {
            rec.action = audit::action::client_cancel;
            rec.status_code = 200;
            if (!x->client->peer_done())  // the client left mid-upload
                rec.error = "reading request body: client closed the stream" +
                            http::bytes_note(x->st.request_body_bytes, "request");
        } else if (upload_stalled) {
            rec.error = "timeout reading request body" + http::bytes_note(x->st.request_body_bytes, "request");
            co_await reply_error(*x, 408, "request timeout", audit::action::reject);
        } else if (late) {
            rec.error = "timeout awaiting response headers";
            co_await reply_error(*x, 504, "gateway timeout", audit::action::error);
        } else {
            rec.error = "upstream reset the stream (http2 error " + std::to_string(up->close_error()) + ")";
            co_await reply_error(*x, 502, "bad gateway", audit::action::error);
        }
        up_conn->reset(*up, NGHTTP2_CANCEL);
        while (!ps->finished) co_await ps->done.wait();
        co_return;
    }

    const std::string* status_text = find_header(up->headers(), ":status");
    const int status = status_text ? std::atoi(status_text->c_str()) : 502;
    if (!co_await run_response_phase(*x, status, to_header_list(up->headers()))) {
        up_conn->reset(*up, NGHTTP2_CANCEL);
        while (!ps->finished) co_await ps->done.wait();
        co_return;
    }
    const bool has_body = !up->fully_read() || !up->trailers().empty();
    pipeline::response_filter_chain* filter = http::body_filters_for_h2(x->st.ex, has_body);
    header_block head{{":status", std::to_string(status)}};
    append_h2_fields(x->st.ex.response_headers, head);
    rec.status_code = status;
    if (!x->client_conn->submit_response(*x->client, head, has_body)) {
        rec.action = audit::action::client_cancel;
        up_conn->reset(*up, NGHTTP2_CANCEL);
        while (!ps->finished) co_await ps->done.wait();
        co_return;
    }
    if (has_body) {
        std::string piece, filtered;
        for (;;) {
            auto got = co_await up->read(piece);
            if (got == stream::read_status::end) {
                if (filter && http::filter_piece(*filter, {}, true, filtered)) {
                    const bool wrote = co_await x->client->write(filtered);
                    if (!wrote) {
                        rec.action = audit::action::client_cancel;
                        break;
                    }
                }
                x->client->finish(http::filtered_trailers(x->st.ex, up->trailers()));
                break;
            }
            if (got == stream::read_status::reset && x->client->closed()) {
                // The client left first: its on_close cancelled this upstream stream.
                rec.action = audit::action::client_cancel;
                rec.error = client_left_error(*x);
                break;
            }
            if (got == stream::read_status::reset) {
                // Propagate the origin's reset (gRPC cancels this way) rather than a clean end.
                rec.action = audit::action::error;
                rec.error = "upstream reset the stream mid-body (http2 error " + std::to_string(up->close_error()) + ")" +
                            http::bytes_note(x->client->body_bytes_sent(), "response");
                x->client_conn->reset(*x->client, up->close_error() ? up->close_error() : std::uint32_t{NGHTTP2_INTERNAL_ERROR});
                break;
            }
            if (filter && !http::filter_piece(*filter, piece, false, filtered)) continue;
            const std::string_view data = filter ? std::string_view(filtered) : std::string_view(piece);
            if (!co_await x->client->write(data)) {
                rec.action = audit::action::client_cancel;
                rec.error = client_left_error(*x);
                up_conn->reset(*up, NGHTTP2_CANCEL);
                break;
            }
        }
    }
    while (!ps->finished) co_await ps->done.wait();
}

// --- HTTP/1.1 upstream (translation) ---

struct h1_outcome {
    enum class kind { done, stale, failed, header_timeout, client_gone, stopped } what = kind::done;
    std::string error;
    bool reusable = false;
};

// The client's stream closed while the upstream was busy: its on_close closed the upstream
// connection, which is why the upstream operation failed. That is the client leaving (`error`
// says how far it got), not an upstream error.
bool client_left(const stream_exchange& x, h1_outcome& out, std::string error) {
    if (!x.client->closed()) return false;
    out.what = h1_outcome::kind::client_gone;
    out.error = std::move(error);
    return true;
}

// The fields after the first `head_fields` (an HTTP/1.1 chunked body's trailers) as HTTP/2
// trailers.
header_block trailers_after(const bhttp::fields& fields, std::size_t head_fields) {
    bhttp::fields tail;
    std::size_t i = 0;
    for (const auto& f : fields)
        if (i++ >= head_fields) tail.insert(f.name_string(), f.value());
    header_block out;
    append_h1_response_fields(tail, out);
    for (auto it = out.begin(); it != out.end();) {
        // Framing and routing fields are not allowed in trailers (RFC 9110 §6.5.1).
        if (it->name == "content-length" || it->name == "host" || it->name == "content-type") it = out.erase(it);
        else ++it;
    }
    return out;
}

template <class Upstream>
asio::awaitable<h1_outcome> forward_h1_on(stream_exchange& x, Upstream& upstream, http::upstream_conn& up,
                                          bool reused) {
    const auto& sh = shared_of(x);
    const auto& ex = x.st.ex;
    h1_outcome out;
    net::watchdog dog(up.socket().get_executor(), [&up] { up.close(); });

    bhttp::request<bhttp::buffer_body> req;
    req.method_string(ex.method);
    req.target(ex.raw_query.empty() ? ex.raw_path : ex.raw_path + "?" + ex.raw_query);
    req.version(11);
    req.set(bhttp::field::host, x.authority);
    set_h1_fields(ex.request_headers, req.base());
    const std::string prefix = outgoing_prefix(x);
    const bool whole = ex.request_body.present && x.body_prefix_is_whole;
    const bool more_to_read = !whole && !x.client->fully_read();
    if (whole || !more_to_read) {
        req.erase(bhttp::field::content_length);
        if (!prefix.empty() || ex.method == "POST" || ex.method == "PUT" || ex.method == "PATCH")
            req.set(bhttp::field::content_length, std::to_string(prefix.size()));
    } else if (!ex.request_headers.contains("content-length")) {
        req.chunked(true);
    }
    req.keep_alive(true);

    bhttp::request_serializer<bhttp::buffer_body> sr{req};
    req.body().data = prefix.empty() ? nullptr : const_cast<char*>(prefix.data());
    req.body().size = prefix.size();
    req.body().more = more_to_read;
    dog.expires_after(sh.proxy.upstream_idle_timeout);
    {
        auto [ec, n] = co_await bhttp::async_write(upstream, sr, as_tuple(use_awaitable));
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
            out.what = reused && prefix.empty() && !more_to_read ? h1_outcome::kind::stale : h1_outcome::kind::failed;
            out.error = "writing request: " + ec.message();
            co_return out;
        }
        x.st.request_body_bytes += prefix.size();
    }
    std::string piece;
    // A client whose body stops moving for client_idle_timeout is cut: its stream is reset (the
    // pending read cannot be abandoned otherwise), the exchange audited as a body timeout.
    bool body_stalled = false;
    net::watchdog body_dog(up.socket().get_executor(), [&x, &body_stalled] {
        body_stalled = true;
        x.client_conn->reset(*x.client, NGHTTP2_CANCEL);
    });
    while (more_to_read && !sr.is_done()) {
        body_dog.expires_after(sh.proxy.client_idle_timeout);
        auto got = co_await x.client->read(piece);
        body_dog.disarm();
        if (got == stream::read_status::reset) {
            out.what = h1_outcome::kind::client_gone;
            out.error = body_stalled ? "timeout reading request body" : "reading request body: client closed the stream";
            out.error += http::bytes_note(x.st.request_body_bytes, "request");
            co_return out;
        }
        const bool last = got == stream::read_status::end;
        req.body().data = piece.empty() || last ? nullptr : piece.data();
        req.body().size = last ? 0 : piece.size();
        req.body().more = !last;
        dog.expires_after(sh.proxy.upstream_idle_timeout);
        auto [ec, n] = co_await bhttp::async_write(upstream, sr, as_tuple(use_awaitable));
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
            if (client_left(x, out, "reading request body: client closed the stream" +
                                        http::bytes_note(x.st.request_body_bytes, "request")))
                co_return out;
            out.what = h1_outcome::kind::failed;
            out.error = "writing request body: " + ec.message() + http::bytes_note(x.st.request_body_bytes, "request");
            co_return out;
        }
        if (last) break;
        x.st.request_body_bytes += piece.size();
    }

    // Response head, skipping interim responses.
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
    dog.expires_after(sh.proxy.upstream_response_header_timeout);
    for (int interim = 0;; ++interim) {
        parser.emplace();
        parser->header_limit(max_header_bytes);
        parser->body_limit(boost::none);
        if (ex.method == "HEAD") parser->skip(true);
        auto [ec, n] = co_await bhttp::async_read_header(upstream, up.buffer, *parser, as_tuple(use_awaitable));
        if (dog.fired()) {
            out.what = h1_outcome::kind::header_timeout;
            out.error = "timeout awaiting response headers";
            co_return out;
        }
        if (ec) {
            if (client_left(x, out, "")) co_return out;  // cancelled before the response: no error
            out.what = reused && !parser->got_some() && prefix.empty() && !more_to_read ? h1_outcome::kind::stale
                                                                                    : h1_outcome::kind::failed;
            out.error = "reading response: " + ec.message();
            co_return out;
        }
        const unsigned s = parser->get().result_int();
        if (s >= 100 && s < 200 && interim < 16) continue;
        break;
    }
    auto& rp = *parser;
    auto& res = rp.get();
    const int status = static_cast<int>(res.result_int());
    if (!co_await run_response_phase(x, status, http::to_header_list(res.base()))) {
        out.what = h1_outcome::kind::stopped;
        co_return out;
    }
    const bool no_body = rp.is_done() || ex.method == "HEAD";
    pipeline::response_filter_chain* filter = http::body_filters_for_h2(x.st.ex, !no_body);
    // Transforms may have changed the headers: rebuild the h1 fields from their list before
    // translating, so hop-by-hop filtering sees the final set.
    http::replace_fields(res.base(), x.st.ex.response_headers);
    header_block head{{":status", std::to_string(status)}};
    append_h1_response_fields(res.base(), head);
    x.st.rec.status_code = status;
    if (!x.client_conn->submit_response(*x.client, head, !no_body)) {
        out.what = h1_outcome::kind::client_gone;
        co_return out;
    }
    if (!no_body) {
        // Beast appends a chunked body's trailer fields to the header fields: whatever is past
        // this count when the body ends is the origin's trailers.
        const auto head_fields = static_cast<std::size_t>(std::distance(res.begin(), res.end()));
        std::vector<char> buf(relay_chunk_bytes);
        std::string filtered;
        while (!rp.is_done()) {
            res.body().data = buf.data();
            res.body().size = buf.size();
            if (up.buffer.capacity() - up.buffer.size() < buf.size()) up.buffer.reserve(up.buffer.size() + buf.size());
            dog.expires_after(sh.proxy.upstream_idle_timeout);
            auto [ec, n] = co_await bhttp::async_read_some(upstream, up.buffer, rp, as_tuple(use_awaitable));
            if (ec == bhttp::error::need_buffer) ec = {};
            if (ec) {
                if (client_left(x, out, client_left_error(x))) co_return out;
                out.what = h1_outcome::kind::failed;
                out.error = "reading response body: " + (dog.fired() ? std::string("timeout") : ec.message()) +
                            http::bytes_note(x.client->body_bytes_sent(), "response");
                x.st.rec.action = audit::action::error;
                x.client_conn->reset(*x.client, NGHTTP2_INTERNAL_ERROR);
                co_return out;
            }
            const std::size_t got = buf.size() - res.body().size;
            std::string_view piece(buf.data(), got);
            if (filter) {
                if (!http::filter_piece(*filter, piece, rp.is_done(), filtered)) continue;
                piece = filtered;
            }
            if (piece.empty()) continue;
            if (!co_await x.client->write(piece)) {
                out.what = h1_outcome::kind::client_gone;
                out.error = client_left_error(x);
                co_return out;
            }
        }
        x.client->finish(http::filtered_trailers(x.st.ex, trailers_after(res.base(), head_fields)));
    }
    out.reusable = res.keep_alive() && rp.is_done();
    co_return out;
}

asio::awaitable<void> forward_h1(std::shared_ptr<stream_exchange> x, client_pool::route route, std::uint16_t port) {
    auto& rec = x->st.rec;
    std::unique_ptr<http::upstream_conn> up = std::move(route.h1);
    bool reused = route.reused;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!up) {
            auto fresh = co_await x->conn->worker->pool->connect(x->st.ex.policy_host, port, true);
            if (!fresh) {
                rec.error = fresh.message();
                const auto reply = http::reply_for_connect_failure(fresh.err());
                co_await reply_error(*x, reply.status, reply.text, audit::action::error);
                co_return;
            }
            up = std::move(*fresh);
            reused = false;
        }
        // The client's cancel aborts whatever is pending on the upstream connection at once.
        http::upstream_conn* raw = up.get();
        x->client->on_close([raw] { raw->close(); });
        h1_outcome r = co_await forward_h1_on(*x, std::get<http::tls_socket>(up->stream), *up, reused);
        x->client->on_close(nullptr);
        switch (r.what) {
            case h1_outcome::kind::done:
                if (r.reusable) x->conn->worker->pool->release(std::move(up));
                else up->close();
                co_return;
            case h1_outcome::kind::stale:
                up->close();
                up.reset();
                continue;
            case h1_outcome::kind::stopped:
                up->close();
                co_return;
            case h1_outcome::kind::header_timeout:
                up->close();
                rec.error = r.error;
                co_await reply_error(*x, 504, "gateway timeout", audit::action::error);
                co_return;
            case h1_outcome::kind::failed:
                up->close();
                rec.error = r.error;
                if (rec.status_code == 0) co_await reply_error(*x, 502, "bad gateway", audit::action::error);
                co_return;
            case h1_outcome::kind::client_gone:
                up->close();
                rec.action = audit::action::client_cancel;
                rec.error = r.error;
                if (rec.status_code == 0) rec.status_code = 200;
                x->client_conn->reset(*x->client, NGHTTP2_CANCEL);
                co_return;
        }
    }
    co_await reply_error(*x, 502, "bad gateway", audit::action::error);
}

// --- one stream, start to finish ---

asio::awaitable<void> serve_stream(std::shared_ptr<stream_exchange> x) {
    auto& st = x->st;
    auto& rec = st.rec;
    http::fill_connection_fields(rec, *x->conn);
    const header_block& h = x->client->headers();
    const std::string* method = find_header(h, ":method");
    const std::string* path = find_header(h, ":path");
    const std::string* authority = find_header(h, ":authority");
    if (!authority) authority = find_header(h, "host");
    st.ex.method = method ? *method : "";
    rec.method = st.ex.method;
    st.ex.remote_addr = x->conn->remote_addr;
    st.ex.sni = x->conn->sni;
    x->authority = authority ? *authority : "";
    st.ex.host = x->authority;
    rec.host = x->authority;

    if (st.ex.method == "CONNECT") {
        co_await reply_error(*x, 405, "CONNECT over HTTP/2 is not supported", audit::action::reject);
        co_return;
    }
    if (const std::string* host = find_header(h, "host"); host && authority != host &&
        core::normalize_host(*host) != core::normalize_host(x->authority)) {
        // RFC 9113 §8.3.1: a Host naming another entity than :authority is malformed. Policy
        // looks at :authority, so letting a different Host through would be a bypass.
        co_await reply_error(*x, 400, "Host header disagrees with :authority", audit::action::reject);
        co_return;
    }
    std::optional<http::request_target> target;
    if (path) target = http::parse_request_target(*path);
    if (target && !target->authority.empty()) target.reset();  // :path is origin-form in HTTP/2
    if (auto bad = http::check_request(st, *x->conn, target)) {
        co_await reply_error(*x, 400, *bad, audit::action::reject);
        co_return;
    }
    auto hp = core::split_host_port(x->authority);
    st.ex.policy_host = core::normalize_host(hp.host);
    st.ex.raw_path = target->path;
    st.ex.raw_query = target->query;
    st.ex.request_headers = to_header_list(h);
    st.ex.request_headers.erase("host");  // :authority is the one name of the target

    if (st.pipeline->wants_request_body(st.ex)) {
        if (!co_await buffer_request_body(*x)) {
            rec.action = audit::action::client_cancel;
            rec.status_code = 200;
            rec.error = "reading request body: stream reset by client";
            co_return;
        }
        if (!st.ex.request_body.complete && !st.policy->forward_oversize_body) {
            rec.error = "request body larger than proxy.max_request_body_bytes (" +
                        std::to_string(st.policy->max_request_body_bytes) + ")";
            co_await reply_error(*x, 413, "request body too large", audit::action::reject);
            co_return;
        }
    }

    // Request phase: policy runs before any upstream dial (default-deny invariant).
    auto decided = st.pipeline->run_request(st.ex, rec.request_transforms);
    if (st.ex.body_capture) rec.body_capture = st.ex.body_capture;
    if (decided.outcome.what != pipeline::verdict::kind::next) {
        http::apply_verdict_to_record(rec, decided, /*request_phase=*/true);
        co_await send_simple(*x, http::make_verdict_response(decided.outcome, true));
        co_return;
    }

    if (x->client->closed()) {
        // Reset by the client before we got this far (typically in the same read): no dial.
        rec.action = audit::action::client_cancel;
        rec.status_code = 200;
        rec.error = "stream reset by client before forwarding";
        co_return;
    }
    std::uint16_t port = x->conn->tls ? 443 : 80;
    if (!hp.port.empty()) port = static_cast<std::uint16_t>(std::stoi(hp.port));
    auto route = co_await x->conn->worker->h2->get(st.ex.policy_host, port, x->conn->tls);
    if (!route) {
        rec.error = route.message();
        const auto reply = http::reply_for_connect_failure(route.err());
        co_await reply_error(*x, reply.status, reply.text, audit::action::error);
        co_return;
    }
    if (route->h2)
        co_await forward_h2(x, route->h2);
    else
        co_await forward_h1(x, std::move(*route), port);
}

// The exchanges of one client connection still running. The connection's handler waits for
// them, so it stays registered (graceful shutdown waits for it) until the last one is audited.
struct exchange_count {
    explicit exchange_count(asio::any_io_executor ex) : none_left(std::move(ex)) {}
    std::size_t n = 0;
    event none_left;
};

asio::awaitable<void> run_stream(std::shared_ptr<stream_exchange> x, std::shared_ptr<exchange_count> in_flight) {
    co_await serve_stream(x);
    x->client->on_close(nullptr);
    // A request still sending after its response ended is drained, then reset, by the
    // connection (connection.cpp, on_frame_send).
    x->st.response_body_bytes = x->client->body_bytes_sent();
    x->st.emit();
    if (--in_flight->n == 0) in_flight->none_left.notify();
}

// A client resetting streams as fast as it opens them (CVE-2023-44487, "rapid reset") frees its
// stream slots at once while our exchanges still run: past this many per connection, new
// streams are refused (and audited) until some finish.
constexpr std::size_t max_exchanges_per_connection = 2 * settings{}.max_concurrent_streams;

void refuse_stream(connection& c, stream& s, const http::connection_info& info) {
    audit::record rec;
    http::fill_connection_fields(rec, info);
    if (const std::string* m = find_header(s.headers(), ":method")) rec.method = *m;
    if (const std::string* a = find_header(s.headers(), ":authority")) rec.host = *a;
    rec.action = audit::action::reject;
    rec.status_code = 503;
    rec.error = "too many unfinished streams on this connection; stream refused";
    rec.finish();
    info.shared->audit->emit(rec);
    c.reset(s, NGHTTP2_REFUSED_STREAM);
}

// As HTTP/1.1 does for a request head cut by client_header_timeout: one record, no response.
// A request that never became an exchange (its head timed out or nghttp2 refused it): one
// record with the connection's fields, as HTTP/1.1 writes for a head it could not read.
void audit_unserved_request(const http::connection_info& info, unsigned status, std::string_view reason) {
    audit::record rec;
    http::fill_connection_fields(rec, info);
    rec.action = audit::action::reject;
    rec.status_code = static_cast<int>(status);
    rec.error = std::string(reason);
    rec.finish();
    info.shared->audit->emit(rec);
}

}  // namespace

template <class Stream>
asio::awaitable<void> serve_h2(Stream& client, http::connection_info& conn, net::watchdog& dog) {
    dog.disarm();
    auto info = std::make_shared<http::connection_info>(conn);
    auto in_flight = std::make_shared<exchange_count>(client.get_executor());
    settings s;
    auto c = std::make_shared<connection>(connection::role::server, client.get_executor(),
                                          std::make_unique<stream_transport<Stream&>>(client), s);
    c->on_request([info, in_flight](std::shared_ptr<connection> self, std::shared_ptr<stream> st) {
        if (in_flight->n >= max_exchanges_per_connection) {
            refuse_stream(*self, *st, *info);
            return;
        }
        ++in_flight->n;
        auto x = std::make_shared<stream_exchange>(self, std::move(st), info);
        asio::co_spawn(self->executor(), run_stream(std::move(x), in_flight), asio::detached);
    });
    c->on_unserved_request(
        [info](unsigned status, std::string_view reason) { audit_unserved_request(*info, status, reason); });
    // Shutting down: GOAWAY; streams in flight finish, then the connection closes by itself.
    if (conn.live) conn.live->on_drain([weak = std::weak_ptr<connection>(c)] {
        if (auto self = weak.lock()) self->shutdown();
    });
    co_await c->run(conn.shared->proxy.client_idle_timeout, conn.shared->proxy.client_header_timeout);
    c->on_request(nullptr);
    if (conn.live) conn.live->on_drain(nullptr);
    while (in_flight->n > 0) co_await in_flight->none_left.wait();
}

template asio::awaitable<void> serve_h2<client_tls>(client_tls&, http::connection_info&, net::watchdog&);
template asio::awaitable<void> serve_h2<net::client_socket>(net::client_socket&, http::connection_info&,
                                                            net::watchdog&);

}  // namespace iron::h2
