#include "h2/downstream.hpp"

#include <cctype>
#include <limits>

#include <nghttp2/nghttp2.h>

#include "core/host_glob.hpp"
#include "h2/upstream.hpp"
#include "http/relay_stock.hpp"
#include "http/request_guard.hpp"
#include "http/respond.hpp"
#include "http/upstream_head.hpp"
#include "net/watchdog.hpp"

namespace iron::h2 {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using exchange::failure_kind;

h2_downstream::h2_downstream(std::shared_ptr<connection> c, std::shared_ptr<stream> s,
                             std::shared_ptr<runtime::connection_info> info)
    : st(*info), client_conn_(std::move(c)), client_(std::move(s)), conn_(std::move(info)) {}

void h2_downstream::identify(exchange_state& st) {
    const header_block& h = client_->headers();
    const std::string* method = find_header(h, ":method");
    const std::string* authority = find_header(h, ":authority");
    if (!authority) authority = find_header(h, "host");
    st.set_method(method ? *method : "");
    authority_ = authority ? *authority : "";
    st.set_host(authority_);
    if (const std::string* path = find_header(h, ":path")) target_ = http::parse_request_target(*path);
    if (target_ && !target_->authority.empty()) target_.reset();  // :path is origin-form in HTTP/2
}

std::optional<exchange::failure> h2_downstream::guard(exchange_state& st) {
    const header_block& h = client_->headers();
    if (st.ex.method == "CONNECT")
        return exchange::client_failure(failure_kind::method_not_allowed, "CONNECT over HTTP/2 is not supported");
    if (const std::string* host = find_header(h, "host");
        host && core::normalize_host(*host) != core::normalize_host(authority_)) {
        // RFC 9113 §8.3.1: a Host naming another entity than :authority is malformed. Policy
        // looks at :authority, so letting a different Host through would be a bypass.
        return exchange::client_failure(failure_kind::malformed, "Host header disagrees with :authority");
    }
    // An underscore spelling of a framing, routing or credential field: some origins read it as
    // the real one, so it would smuggle what the checks above looked at.
    if (auto bad = http::check_underscore_names(h))
        return exchange::client_failure(failure_kind::malformed, std::string(bad->reason));
    if (auto f = exchange::check_target(st, *conn_, target_)) return f;
    st.ex.request_headers = to_header_list(h);
    st.ex.request_headers.erase("host");  // :authority is the one name of the target
    return std::nullopt;
}

// Reads the client's request body for transforms that asked for it, up to the cap. Past the cap
// the rest stays unread on the stream and the body is marked incomplete.
asio::awaitable<std::optional<exchange::failure>> h2_downstream::buffer_body(exchange_state& st) {
    auto& body = st.ex.request_body;
    body.present = true;
    const std::int64_t cap = st.policy->max_request_body_bytes;
    const std::size_t limit = cap > 0 ? static_cast<std::size_t>(cap) : std::numeric_limits<std::size_t>::max();
    std::string piece;
    std::string read;
    while (read.size() <= limit) {
        auto status = co_await client_->read(piece);
        if (status == stream::read_status::reset)
            co_return exchange::client_failure(failure_kind::gone, "reading request body: stream reset by client");
        if (status == stream::read_status::end) break;
        read += piece;
    }
    body.complete = client_->peer_done() && read.size() <= limit;
    body_prefix_ = read;
    body_prefix_is_whole_ = body.complete;
    if (!body.complete) read.resize(limit);
    body.data = std::move(read);
    co_return std::nullopt;
}

namespace {

// A cleartext origin has no ALPN to say whether it speaks HTTP/2: only proxy.upstream_h2c says so.
bool speaks_h2c(const config::proxy_config& proxy, const std::string& host) {
    const std::string name = core::normalize_host(host);
    for (const auto& glob : proxy.upstream_h2c)
        if (core::match_host_glob(core::normalize_host(glob), name)) return true;
    return false;
}

}  // namespace

// A ready HTTP/2 connection to the origin, taken without waiting (connect() does the rest).
std::optional<h2_downstream::route> h2_downstream::pooled(exchange_state& st) {
    if (client_->closed()) return std::nullopt;  // connect() says why
    const auto to = exchange::upstream_for(st, conn_->tls);
    if (to.operator_endpoint) {  // an MCP gateway upstream: spoken to in HTTP/1.1, pooled apart
        auto idle = conn_->worker->pool->take_idle(to.host, to.port, to.tls, upstream_proxy::carriage::http,
                                                   upstream_proxy::destination::operator_endpoint);
        if (!idle) return std::nullopt;
        return route{client_pool::route{nullptr, std::move(idle), true}};
    }
    if (!to.tls && !speaks_h2c(conn_->shared->proxy, to.host)) return std::nullopt;
    if (auto ready = conn_->worker->h2->ready(to.host, to.port, to.tls)) return route{std::move(*ready)};
    return std::nullopt;
}

// Over TLS the worker's HTTP/2 client pool picks the route (the origin chooses h2 or http/1.1 in
// ALPN); a cleartext origin gets h2c only when configured as speaking it, else HTTP/1.1 from the
// keep-alive pool, which every origin speaks. A retry after a stale pooled HTTP/1.1 connection
// dials a fresh one.
asio::awaitable<h2_downstream::route> h2_downstream::connect(exchange_state& st, int attempt) {
    // Reset by the client before we got this far (typically in the same read): no dial.
    if (client_->closed())
        co_return exchange::client_failure(failure_kind::gone, "stream reset by client before forwarding");
    const auto to = exchange::upstream_for(st, conn_->tls);
    if (to.operator_endpoint) {
        auto fresh = co_await conn_->worker->pool->connect(to.host, to.port, to.tls, false, upstream_proxy::carriage::http,
                                                           upstream_proxy::destination::operator_endpoint);
        if (!fresh) co_return exchange::dial_failure(fresh.err());
        co_return client_pool::route{nullptr, std::move(*fresh), false};
    }
    const bool may_speak_h2 = to.tls || speaks_h2c(conn_->shared->proxy, to.host);
    if (attempt == 0 && may_speak_h2) {
        auto got = co_await conn_->worker->h2->get(to.host, to.port, to.tls);
        if (!got) co_return exchange::dial_failure(got.err());
        co_return std::move(*got);
    }
    if (attempt == 0) {
        bool reused = false;
        auto pooled = co_await conn_->worker->pool->acquire(to.host, to.port, to.tls, reused);
        if (!pooled) co_return exchange::dial_failure(pooled.err());
        co_return client_pool::route{nullptr, std::move(*pooled), reused};
    }
    auto fresh = co_await conn_->worker->pool->connect(to.host, to.port, to.tls);
    if (!fresh) co_return exchange::dial_failure(fresh.err());
    co_return client_pool::route{nullptr, std::move(*fresh), false};
}

// A plain function: attempt_on takes the upstream by value, so no frame is needed here.
asio::awaitable<bool> h2_downstream::attempt(exchange_state& st, route r, bool last_attempt) {
    auto& chosen = std::get<client_pool::route>(r);
    const auto& proxy = conn_->shared->proxy;
    if (chosen.h2) return exchange::attempt_on(*this, h2_upstream(std::move(chosen.h2), proxy), st, last_attempt);
    auto& conn = chosen.h1;
    auto& worker = *conn_->worker;
    if (auto* plain = std::get_if<http::tcp_socket>(&conn->stream))
        return exchange::attempt_on(*this, http::h1_upstream<http::tcp_socket>(std::move(conn), *plain, chosen.reused, worker, proxy),
                                    st, last_attempt);
    auto& tls = std::get<http::tls_socket>(conn->stream);
    return exchange::attempt_on(*this, http::h1_upstream<http::tls_socket>(std::move(conn), tls, chosen.reused, worker, proxy),
                                st, last_attempt);
}

// A proxy-made response (error text or a transform's verdict) on the client's stream.
namespace {
header_block head_of(const bhttp::response<bhttp::string_body>& res) {
    header_block head{{":status", std::to_string(res.result_int())}};
    for (const auto& f : res)
        if (!is_connection_specific(f.name_string(), f.value()))
            head.push_back(header{std::string(f.name_string()), std::string(f.value())});
    for (auto& h : head)
        for (auto& ch : h.name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return head;
}

asio::awaitable<void> send_simple(connection& c, stream& s, const bhttp::response<bhttp::string_body>& res) {
    const bool has_body = !res.body().empty();
    if (!c.submit_response(s, head_of(res), has_body)) co_return;
    if (has_body) {
        co_await s.write(res.body());
        s.finish();
    }
}
}  // namespace

asio::awaitable<void> h2_downstream::reply_error(exchange::proxy_reply reply) {
    co_await send_simple(*client_conn_, *client_, http::make_response(reply, true));
}

asio::awaitable<void> h2_downstream::reply_verdict(exchange::proxy_reply reply) {
    co_await send_simple(*client_conn_, *client_, http::make_response(reply, true));
}

void h2_downstream::abort(const exchange::failure& f) {
    if (client_->closed()) return;
    std::uint32_t code = NGHTTP2_INTERNAL_ERROR;
    if (f.kind == failure_kind::gone) code = NGHTTP2_CANCEL;
    else if (f.stream_error != 0) code = f.stream_error;
    client_conn_->reset(*client_, code);
}

void h2_downstream::arm_close_hook() {
    if (!tied_ && !watch_) {
        client_->on_close(nullptr);
        return;
    }
    // Cleared (above) before either member goes: the hook never outlives what it names.
    client_->on_close([this] {
        if (tied_) tied_->close();
        if (watch_) watch_->client_leaves();
    });
}

void h2_downstream::account(exchange_state& st) {
    client_->on_close(nullptr);
    // A request still sending after its response ended is drained, then reset, by the
    // connection (connection.cpp, on_frame_send).
    st.response_body_bytes = client_->body_bytes_sent();
}

h2_downstream::h1_message& h2_downstream::h1_request(exchange_state& st) {
    const auto& ex = st.ex;
    auto& req = h1_request_;
    req.method_string(ex.method);
    req.target(http::outgoing_target(ex));
    req.version(11);
    req.set(bhttp::field::host, authority_);
    set_h1_fields(ex.request_headers, req.base());
    if (ex.reroute) http::point_at_reroute(req.base(), *ex.reroute);
    const auto plan = request_body_plan();
    if (!plan.more_unread) {
        req.erase(bhttp::field::content_length);
        if (!plan.prefix.empty() || ex.method == "POST" || ex.method == "PUT" || ex.method == "PATCH")
            req.set(bhttp::field::content_length, std::to_string(plan.prefix.size()));
    } else if (!ex.request_headers.contains("content-length")) {
        req.chunked(true);
    }
    req.keep_alive(true);
    return req;
}

std::string_view h2_downstream::body_prefix() const {
    const auto& body = st.ex.request_body;
    if (!body.present) return {};
    return body.complete ? std::string_view(body.data) : std::string_view(body_prefix_);
}

h2_downstream::body_plan h2_downstream::request_body_plan() const {
    const bool whole = body_prefix_is_whole();
    return {body_prefix(), !whole && !client_->fully_read(), false};
}

asio::awaitable<exchange::body_read> h2_downstream::read_body(exchange_state& st) {
    if (!body_dog_) {
        body_dog_.emplace(client_conn_->executor(), [this] {
            body_stalled_ = true;
            client_conn_->reset(*client_, NGHTTP2_CANCEL);
        });
    }
    body_dog_->expires_after(conn_->shared->proxy.client_idle_timeout);
    const auto got = co_await client_->read(piece_);
    body_dog_->disarm();
    if (got == stream::read_status::data) co_return exchange::body_read{piece_, false, std::nullopt};
    if (got == stream::read_status::end) co_return exchange::body_read{{}, true, std::nullopt};
    std::string why = body_stalled_ ? "timeout reading request body" : "reading request body: client closed the stream";
    co_return exchange::body_read{
        {}, true, exchange::client_failure(failure_kind::gone, why + runtime::bytes_note(st.request_body_bytes, "request"))};
}

exchange::failure h2_downstream::left_failure(const exchange_state& st) const {
    if (st.response_started)
        return exchange::client_failure(failure_kind::gone, "writing response body: client closed the stream" +
                                                                runtime::bytes_note(client_->body_bytes_sent(), "response"));
    return exchange::client_failure(failure_kind::gone, "reading request body: client closed the stream" +
                                                            runtime::bytes_note(st.request_body_bytes, "request"));
}

std::vector<char>& h2_downstream::relay_buffer() {
    if (relay_.empty()) relay_.resize(http::relay_chunk_bytes);
    return relay_;
}

asio::awaitable<std::optional<exchange::failure>> h2_downstream::send_body(exchange_state& st, std::string_view piece,
                                                                           bool last) {
    (void)last;  // DATA frames need no end marker: finish_response ends the stream
    if (piece.empty()) co_return std::nullopt;
    const bool written = co_await client_->write(piece);
    if (!written) co_return left_failure(st);
    co_return std::nullopt;
}

void h2_downstream::append_response_fields(exchange_state& st, h2_upstream&, header_block& block) {
    append_h2_fields(st.ex.response_headers, block);
}

header_block h2_downstream::trailers_of(h2_upstream& up) { return up.trailers(); }

// An HTTP/1.1 chunked body's trailers as HTTP/2 trailers: framing and routing fields are not
// allowed there (RFC 9110 §6.5.1).
header_block h2_downstream::h1_trailers_for_h2(const core::header_list& trailers) {
    header_block out;
    append_h2_fields(trailers, out);
    for (auto it = out.begin(); it != out.end();) {
        if (it->name == "content-length" || it->name == "content-type") it = out.erase(it);
        else ++it;
    }
    return out;
}

std::optional<exchange::failure> h2_downstream::send_head(exchange_state& st, const exchange::response_head& head,
                                                          const header_block& block) {
    st.rec.status_code = head.status;
    st.response_started = true;
    response_has_body_ = !head.no_body;
    if (client_conn_->submit_response(*client_, block, response_has_body_)) return std::nullopt;
    return exchange::client_failure(failure_kind::gone, "");
}

}  // namespace iron::h2
