#pragma once
// The downstream adapter for one HTTP/1.1 exchange (exchange/driver.hpp says what an adapter
// provides): the client's request as Beast parsed it, rewritten in place for the origin, and the
// origin's response written back with the framing the proxy chose. Used by http/session.cpp for
// the plain listener, MITM, plain HTTP inside tunnels and transparent interception alike.
#include <sys/socket.h>

#include <cerrno>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/host_glob.hpp"
#include "exchange/driver.hpp"
#include "h2/client_pool.hpp"
#include "h2/upstream_for_h1.hpp"
#include "http/messages.hpp"
#include "http/relay_stock.hpp"
#include "http/request_guard.hpp"
#include "http/request_parser.hpp"
#include "http/respond.hpp"
#include "http/response_filtering.hpp"
#include "http/upstream_h1.hpp"
#include "http/upstream_head.hpp"
#include "net/await.hpp"
#include "net/live_connections.hpp"
#include "net/splice.hpp"

namespace iron::http {

// What one HTTP/1.1 client connection keeps between its exchanges.
struct client_connection {
    runtime::connection_info& conn;
    net::watchdog& dog;  // the client's deadline: closes its socket when it fires
    boost::beast::flat_buffer buffer;
    relay_loan relay;  // a relay buffer, lent while an exchange moves a body
};

template <class Client>
class h1_downstream {
    using failure = exchange::failure;
    using failure_kind = exchange::failure_kind;
    using exchange_state = runtime::exchange_state;
    template <class T>
    using awaitable = boost::asio::awaitable<T>;

public:
    h1_downstream(Client& client, client_connection& cc, request_parser& parser, std::optional<failure> head_failure)
        : client_(client), cc_(cc), parser_(parser), head_failure_(std::move(head_failure)),
          proxy_(cc.conn.shared->proxy) {}

    // Whether the connection may carry another exchange.
    bool keep_alive() const { return keep_alive_; }

    // --- the request phases ---

    std::optional<failure> accept_head() const { return head_failure_; }

    void identify(exchange_state& st) {
        auto& req = parser_.get();
        st.set_method(std::string(req.method_string()));
        target_ = parse_request_target(req.target());
        std::string host(req[boost::beast::http::field::host]);
        if (target_ && !target_->authority.empty()) host = target_->authority;  // absolute-form wins
        st.set_host(transparent_host(std::move(host)));
        client_keep_alive_ = req.keep_alive() && !runtime::draining(cc_.conn);
    }

    // Framing and Host lines first: nothing below may trust Beast's reading of an ambiguous head.
    std::optional<failure> guard(exchange_state& st) {
        namespace bhttp = boost::beast::http;
        auto& req = parser_.get();
        if (auto bad = check_request_head(request_head_of(req.base(), req.version())))
            return exchange::client_failure(bad->status == 501 ? failure_kind::not_implemented : failure_kind::malformed,
                                            std::string(bad->reason));
        if (auto f = exchange::check_target(st, cc_.conn, target_)) return f;
        // RFC 9112 §3.2.2: an absolute-form authority replaces Host before transforms, the audit
        // record and the origin see the request.
        if (!target_->authority.empty()) req.set(bhttp::field::host, target_->authority);
        upstream_tls_ = target_->scheme.empty() ? cc_.conn.tls : target_->scheme == "https";
        websocket_ = is_websocket_upgrade(req.base());
        expect_continue_ = core::iequals(req[bhttp::field::expect], "100-continue");
        st.ex.request_headers = to_header_list(req.base());
        return std::nullopt;
    }

    // Reads the body for transforms that asked, up to the cap, into st.ex.request_body. Past the
    // cap the body is marked incomplete and the bytes read beyond it are kept, so the original
    // body can still be forwarded whole (proxy.oversize_body: forward).
    awaitable<std::optional<failure>> buffer_body(exchange_state& st) {
        if (expect_continue_ && !parser_.is_done())  // the body is needed before any dial: invite it
            if (auto f = co_await invite_body()) co_return f;
        auto& body = st.ex.request_body;
        body.present = true;
        const std::int64_t cap = st.policy->max_request_body_bytes;
        const std::size_t limit = cap > 0 ? static_cast<std::size_t>(cap) : std::numeric_limits<std::size_t>::max();
        std::string read;
        while (!parser_.is_done() && read.size() <= limit) {
            if (auto f = co_await read_into(read)) co_return f;
        }
        body.complete = parser_.is_done() && read.size() <= limit;
        if (!body.complete) {
            overflow_ = read.substr(limit);
            read.resize(limit);
        }
        body.data = std::move(read);
        co_return std::nullopt;
    }

    // An HTTP/2 stream on the worker's shared connection to the origin, or an HTTP/1.1
    // connection (pooled: `reused`, it may be stale).
    using route = std::variant<failure, h2::client_pool::route>;

    // The keep-alive common case, taken without a dial: the worker's open HTTP/2 connection to
    // the origin, or an idle pooled HTTP/1.1 one.
    std::optional<route> pooled(exchange_state& st) {
        const auto to = exchange::upstream_for(st, upstream_tls_);
        if (may_speak_h2(st, to)) {
            if (auto ready = cc_.conn.worker->h2->ready(to.host, to.port, true)) return route{std::move(*ready)};
            return std::nullopt;
        }
        if (auto idle = cc_.conn.worker->pool->take_idle(to.host, to.port, to.tls, carriage(), destination_of(to.operator_endpoint)))
            return h2::client_pool::route{nullptr, std::move(idle), true};
        return std::nullopt;
    }

    // Where h2 may be offered, the worker's HTTP/2 client pool picks the route (the origin
    // chooses h2 or http/1.1 in ALPN; h1-only origins are remembered); else a fresh HTTP/1.1
    // connection. A retry after a stale pooled HTTP/1.1 connection dials a fresh one, as before.
    awaitable<route> connect(exchange_state& st, int attempt) {
        const auto to = exchange::upstream_for(st, upstream_tls_);
        if (may_speak_h2(st, to) && (attempt == 0 || tried_h2_)) {
            auto got = co_await cc_.conn.worker->h2->get(to.host, to.port, true);
            if (!got) co_return exchange::dial_failure(got.err());
            co_return std::move(*got);
        }
        const upstream_proxy::carriage what = carriage();
        const upstream_proxy::destination who = destination_of(to.operator_endpoint);
        auto fresh = co_await cc_.conn.worker->pool->connect(to.host, to.port, to.tls, false, what, who);
        if (!fresh) co_return exchange::dial_failure(fresh.err());
        co_return h2::client_pool::route{nullptr, std::move(*fresh), false};
    }

    // HTTP/2 upstream for a TLS origin unless switched off (proxy.upstream_h2_for_http1). A
    // WebSocket upgrade needs HTTP/1.1 end to end (no RFC 8441 here), and an operator endpoint
    // (an MCP gateway upstream) is spoken to in HTTP/1.1, pooled apart.
    bool may_speak_h2(const exchange_state& st, const exchange::upstream_target& to) const {
        return to.tls && proxy_.upstream_h2_for_http1 && !websocket_ && !to.operator_endpoint &&
               st.ex.method != "CONNECT" && cc_.conn.worker->h2 != nullptr;
    }

    // A WebSocket carries opaque bytes after the upgrade: through a parent proxy, only a tunnel can.
    upstream_proxy::carriage carriage() const {
        return websocket_ ? upstream_proxy::carriage::opaque : upstream_proxy::carriage::http;
    }

    // A plain function: attempt_on takes the upstream by value, so no frame is needed here.
    awaitable<bool> attempt(exchange_state& st, route r, bool last_attempt) {
        auto& p = std::get<h2::client_pool::route>(r);
        tried_h2_ = p.h2 != nullptr;
        if (p.h2) return exchange::attempt_on(*this, h2::upstream_for_h1(std::move(p.h2), proxy_), st, last_attempt);
        auto& worker = *cc_.conn.worker;
        if (auto* plain = std::get_if<tcp_socket>(&p.h1->stream))
            return exchange::attempt_on(*this, h1_upstream<tcp_socket>(std::move(p.h1), *plain, p.reused, worker, proxy_),
                                        st, last_attempt);
        auto& tls = std::get<tls_socket>(p.h1->stream);
        return exchange::attempt_on(*this, h1_upstream<tls_socket>(std::move(p.h1), tls, p.reused, worker, proxy_), st,
                                    last_attempt);
    }

    // Graceful shutdown's cut closes the origin's side too (an HTTP/2 origin: this stream only).
    template <class Up>
    net::live_connection::cut_hook tie_upstream(Up& up) {
        return net::live_connection::cut_hook(cc_.conn.live, &close_upstream, &up.connection());
    }
    net::live_connection::cut_hook tie_upstream(h2::upstream_for_h1& up) {
        return net::live_connection::cut_hook(cc_.conn.live, &h2::upstream_for_h1::cut, &up);
    }

    // While a transform waits on the network: a client that closes its connection meanwhile is
    // noticed at once — its socket turns readable and reads as end-of-file — and the waiting call
    // is cancelled (pipeline::client_watch). Bytes the client sends meanwhile (a pipelined request,
    // the rest of a body, TLS records) end the watch: they are not read here, so a close behind
    // them cannot be told apart.
    class watching_client {
    public:
        using socket_type = boost::asio::ip::tcp::socket::lowest_layer_type;
        watching_client(socket_type& sock, std::shared_ptr<pipeline::client_watch> w)
            : sock_(sock), alive_(std::make_shared<bool>(true)) {
            // The handler holds what it uses; after the guard is gone it touches nothing.
            sock_.async_wait(socket_type::wait_read, [w = std::move(w), alive = alive_, fd = sock.native_handle()](
                                                        const boost::system::error_code& ec) {
                if (!*alive || ec == boost::asio::error::operation_aborted) return;
                if (ec) return w->client_leaves();  // the socket failed (or our deadline closed it)
                char byte = 0;
                const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) w->client_leaves();
            });
        }
        ~watching_client() {
            *alive_ = false;
            boost::system::error_code ignored;
            sock_.cancel(ignored);  // nothing else waits on the client's socket while a transform waits
        }
        watching_client(const watching_client&) = delete;
        watching_client& operator=(const watching_client&) = delete;

    private:
        socket_type& sock_;
        std::shared_ptr<bool> alive_;
    };
    watching_client watch_client(exchange_state& st) {
        auto w = std::make_shared<pipeline::client_watch>();
        st.ex.watch = w;
        return watching_client(client_.lowest_layer(), std::move(w));
    }

    // --- responses the proxy makes ---

    // An error ends the connection: what the client sent after it cannot be trusted.
    awaitable<void> reply_error(exchange::proxy_reply reply) {
        co_await write_reply(make_response(reply, false), false);
    }
    // A verdict keeps the connection when the request was read whole.
    awaitable<void> reply_verdict(exchange::proxy_reply reply) {
        const bool keep = client_keep_alive_ && parser_.is_done();
        co_await write_reply(make_response(reply, keep), keep);
    }
    void abort(const failure&) { keep_alive_ = false; }
    void account(exchange_state&) {}

    // --- what the upstream adapter asks of the client side ---

    // The request as it goes to the origin: the client's own message, rewritten in place.
    proxy_request& h1_request(exchange_state& st) {
        auto& req = parser_.get();
        const auto& body = st.ex.request_body;
        if (body.present) outgoing_ = body.data + overflow_;
        if (req.method_string() != st.ex.method) req.method_string(st.ex.method);  // a transform changed it
        const outgoing_framing framing{parser_.chunked(), body.present, body.complete, outgoing_.size(),
                                       parser_.content_length().has_value()};
        prepare_upstream_head(req, st.ex.request_headers, st.ex.host, outgoing_target(st.ex), framing, websocket_);
        if (st.ex.reroute) point_at_reroute(req.base(), *st.ex.reroute);
        return req;
    }

    struct body_plan {
        std::string_view prefix;  // already read: the body a transform buffered (maybe rewritten)
        bool more_unread = false;
        bool expect_continue = false;  // the client waits for 100 Continue before sending it
    };
    body_plan request_body_plan() const { return {outgoing_, !parser_.is_done(), expect_continue_ && !continue_sent_}; }

    // We answer 100-continue ourselves (Expect is not forwarded), so the client sends its body now
    // instead of waiting for an interim response that would never come.
    awaitable<std::optional<failure>> invite_body() {
        static constexpr char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
        cc_.dog.expires_after(proxy_.client_idle_timeout);
        auto [ec, n] = co_await boost::asio::async_write(client_, boost::asio::buffer(line, sizeof line - 1), net::use_tuple);
        if (ec) co_return exchange::client_failure(failure_kind::gone, "");
        continue_sent_ = true;
        co_return std::nullopt;
    }

    awaitable<exchange::body_read> read_body(exchange_state& st) {
        if (parser_.is_done()) co_return exchange::body_read{{}, true, std::nullopt};
        std::vector<char>& buf = relay_buffer();
        auto& body = parser_.get().body();
        body.data = buf.data();
        body.size = buf.size();
        boost::system::error_code ec = co_await read_some();
        if (ec) {
            const std::string why = cc_.dog.fired() ? "timeout reading body" : ec.message();
            co_return exchange::body_read{
                {}, true,
                exchange::client_failure(failure_kind::gone, "reading request body: " + why +
                                                                 runtime::bytes_note(st.request_body_bytes, "request"))};
        }
        co_return exchange::body_read{{buf.data(), buf.size() - body.size}, parser_.is_done(), std::nullopt};
    }

    // An HTTP/1.1 client's leaving shows as a failed read or write on its own socket.
    bool client_left() const { return false; }
    failure left_failure(exchange_state&) const { return exchange::client_failure(failure_kind::gone, ""); }
    bool expects_upgrade() const { return websocket_; }
    std::vector<char>& relay_buffer() { return cc_.relay.get(); }
    std::uint64_t response_bytes(const exchange_state& st) const { return st.response_body_bytes; }

    // --- the response ---

    // The origin's head, rewritten in place: the transforms' header list, hop-by-hop fields gone,
    // framing ours to choose. Returns the response filters to run the body through, if any.
    template <class Up>
    pipeline::response_filter_chain* prepare_response(exchange_state& st, const exchange::response_head& head, Up& up) {
        auto& res = up.response();
        // A body a transform replaced goes with the Content-Length the response phase set.
        const bool replaced = st.ex.response_body.modified;
        const bool chunked = up.chunked() && !replaced;
        const bool has_length = up.length_known() || replaced;
        if (static_cast<unsigned>(head.status) != res.result_int()) {  // a transform set another status: its own reason
            res.result(static_cast<unsigned>(head.status));
            res.reason({});
        }
        replace_fields(res.base(), st.ex.response_headers);
        remove_hop_by_hop(res.base());
        frame_replaced_body(res, st.ex);
        res.version(11);
        // A close-delimited body is re-framed as chunked so the client connection survives.
        if (chunked || (!has_length && !head.no_body)) res.chunked(true);
        // Shutting down: this response is the connection's last, and says so.
        client_keep_alive_ = client_keep_alive_ && !runtime::draining(cc_.conn);
        res.keep_alive(client_keep_alive_);
        res_ = &res;
        return prepare_filtered_response(res, st.ex.response_filters, head.no_body);
    }

    // When body bytes came in with the head (small responses), the first body write carries head
    // and body together: one TLS record and one send instead of two. Otherwise the head goes on
    // its own (send_response_head), so a slow stream (SSE, long poll) shows its status at once.
    template <class Up>
    std::optional<failure> start_response(exchange_state& st, const exchange::response_head& head, Up& up) {
        st.rec.status_code = head.status;
        st.response_started = true;
        res_sr_.emplace(*res_);
        head_waits_ = head.no_body || !up.body_ready();
        return std::nullopt;
    }
    bool head_waits() const { return head_waits_; }
    awaitable<std::optional<failure>> send_response_head() {
        cc_.dog.expires_after(proxy_.client_idle_timeout);
        auto [ec, n] = co_await boost::beast::http::async_write_header(client_, *res_sr_, net::use_tuple);
        if (ec) co_return exchange::client_failure(failure_kind::gone, "writing response: " + ec.message());
        co_return std::nullopt;
    }

    awaitable<std::optional<failure>> send_body(exchange_state& st, std::string_view piece, bool last) {
        // An empty piece must be "no data" (nullptr), not a zero-length buffer: the chunked
        // serializer would write a zero-length chunk, which is the end-of-body marker.
        auto& body = res_->body();
        body.data = piece.empty() ? nullptr : const_cast<char*>(piece.data());
        body.size = piece.size();
        body.more = !last;
        if (piece.empty() && !last) co_return std::nullopt;
        cc_.dog.expires_after(proxy_.client_idle_timeout);
        const boost::system::error_code ec = co_await write_body_piece(client_, *res_sr_);
        if (ec) {
            const std::string why = cc_.dog.fired() ? "timeout writing body" : ec.message();
            co_return exchange::client_failure(failure_kind::gone, "writing response body: " + why +
                                                                       runtime::bytes_note(st.response_body_bytes, "response"));
        }
        st.response_body_bytes += piece.size();
        co_return std::nullopt;
    }

    // A head still held back, or the end of a chunked body, has yet to go (send_body(st, {}, true)).
    bool response_unfinished() const { return !res_sr_->is_done(); }
    // The response is out. HTTP/1.1 trailers are not relayed. A request body the origin did not
    // wait for (its early answer, then its reset of the stream) is still unread: the connection
    // cannot carry another request.
    template <class Up>
    void finish_response(exchange_state& st, Up& up) {
        (void)st;
        (void)up;
        keep_alive_ = client_keep_alive_ && parser_.is_done();
    }

    // After the origin's 101: the handshake response goes to the client as is, then both sides
    // are relayed untouched until either closes; the audit record covers the whole session.
    template <class Up>
    awaitable<std::optional<failure>> switch_protocols(exchange_state& st, Up& up) {
        up.abandon();  // never pooled after a protocol switch
        up.connection().deadline().disarm();
        st.rec.status_code = 101;
        st.response_started = true;
        auto& res = up.response();
        redact_upgrade_head(res, st.ex);
        boost::beast::http::serializer<false, boost::beast::http::buffer_body, proxy_fields> sr{res};
        auto [ec, n] = co_await boost::beast::http::async_write_header(client_, sr, net::use_tuple);
        if (ec || !co_await flush_early_frames(up)) co_return std::nullopt;
        cc_.dog.disarm();
        upstream_conn& origin = up.connection();
        net::watchdog both(origin.socket().get_executor(), [this, &origin] {
            boost::system::error_code ignored;
            client_.lowest_layer().close(ignored);
            origin.close();
        });
        const auto totals = co_await net::splice(client_, up.stream(), both, proxy_.client_idle_timeout);
        st.request_body_bytes = totals.a_to_b;
        st.response_body_bytes = totals.b_to_a;
        co_return std::nullopt;
    }

    // An HTTP/2 origin cannot switch protocols (upstream_for_h1 refuses its 1xx); never reached.
    awaitable<std::optional<failure>> switch_protocols(exchange_state& st, h2::upstream_for_h1& up) {
        (void)st;
        (void)up;
        co_return exchange::upstream_failure(failure_kind::broken, "unexpected 101 Switching Protocols");
    }

private:
    // Frames that arrived with the handshake, on either side, go first.
    template <class Up>
    awaitable<bool> flush_early_frames(Up& up) {
        auto& from_origin = up.connection().buffer;
        if (from_origin.size() > 0) {
            auto [ec, n] = co_await boost::asio::async_write(client_, from_origin.data(), net::use_tuple);
            if (ec) co_return false;
            from_origin.consume(from_origin.size());
        }
        if (cc_.buffer.size() > 0) {
            auto [ec, n] = co_await boost::asio::async_write(up.stream(), cc_.buffer.data(), net::use_tuple);
            if (ec) co_return false;
            cc_.buffer.consume(cc_.buffer.size());
        }
        co_return true;
    }

    static void close_upstream(void* up) { static_cast<upstream_conn*>(up)->close(); }

    // Transparent interception: a request that names no host goes where the client was
    // connecting (policy then sees the IP literal); a Host without a port keeps that port.
    std::string transparent_host(std::string host) const {
        const auto& dst = cc_.conn.original_dst;
        if (dst.empty()) return host;
        if (host.empty()) return dst;
        if (core::split_host_port(host).port.empty() && !cc_.conn.tls) host += ":" + core::split_host_port(dst).port;
        return host;
    }

    // One read of request body bytes into the parser's body buffer, returned for the caller to
    // await. A full body buffer is success.
    auto read_some() {
        // Beast reads at most the buffer's spare capacity (floor 512 B): without room, a 10 MiB
        // body went through as 512-byte TLS records.
        const std::size_t want = relay_buffer().size();
        if (cc_.buffer.capacity() - cc_.buffer.size() < want) cc_.buffer.reserve(cc_.buffer.size() + want);
        cc_.dog.expires_after(proxy_.client_idle_timeout);
        return read_body_some(client_, cc_.buffer, parser_);
    }

    // One more relay chunk of the body appended to `read` (the transforms' buffer).
    awaitable<std::optional<failure>> read_into(std::string& read) {
        const std::size_t used = read.size();
        read.resize(used + relay_chunk_bytes);
        auto& body = parser_.get().body();
        body.data = read.data() + used;
        body.size = relay_chunk_bytes;
        boost::system::error_code ec = co_await read_some();
        read.resize(used + relay_chunk_bytes - body.size);
        if (!ec) co_return std::nullopt;
        co_return exchange::client_failure(
            failure_kind::gone,
            "reading request body: " + (cc_.dog.fired() ? std::string("timeout reading request body") : ec.message()));
    }

    template <class Response>
    awaitable<void> write_reply(Response res, bool keep) {
        auto [ec, n] = co_await boost::beast::http::async_write(client_, res, net::use_tuple);
        keep_alive_ = keep && !ec;
    }

    Client& client_;
    client_connection& cc_;
    request_parser& parser_;
    std::optional<failure> head_failure_;
    const config::proxy_config& proxy_;
    std::optional<request_target> target_;
    bool client_keep_alive_ = false;
    bool keep_alive_ = false;
    bool upstream_tls_ = false;
    bool websocket_ = false;
    bool expect_continue_ = false;
    bool continue_sent_ = false;
    bool tried_h2_ = false;  // the last attempt went over HTTP/2
    bool head_waits_ = false;  // the response head goes on its own, before any body
    std::string overflow_;  // read past the buffering cap: forwarded after the buffered part
    std::string outgoing_;  // what goes upstream before the unread rest of the body
    proxy_response* res_ = nullptr;
    std::optional<boost::beast::http::serializer<false, boost::beast::http::buffer_body, proxy_fields>> res_sr_;
};

}  // namespace iron::http
