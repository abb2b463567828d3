#include "h2/connection.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nghttp2/nghttp2.h>

#include "core/log.hpp"

namespace iron::h2 {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

// A producer may run this far ahead of the peer's flow-control window before it waits.
constexpr std::size_t out_high_water = 64 * 1024;
// How much the writer gathers from nghttp2 into one transport write (one TLS record burst).
constexpr std::size_t write_batch_bytes = 64 * 1024;
constexpr std::size_t read_chunk_bytes = 16 * 1024;
// An origin connection reads more at once: few of them exist, each carries many exchanges' bodies,
// and a bigger read hands a stream more DATA at once to forward as one write (stream::read).
constexpr std::size_t client_read_chunk_bytes = 64 * 1024;
// After its response ended, a stream's unread request body is dropped up to this much, for at
// most discard_grace; then the stream is reset.
constexpr std::size_t discard_budget_bytes = 1024 * 1024;
constexpr auto discard_grace = std::chrono::seconds(2);
// Request heads nghttp2 may refuse on one connection before it is ended: a client that keeps
// sending malformed requests is broken or probing, and each one costs an audit record.
constexpr unsigned max_malformed_requests = 32;
// After our GOAWAY when a deadline ends the connection: long enough to send it, short enough that
// a peer that stopped reading cannot hold the connection.
constexpr auto goaway_grace = std::chrono::seconds(1);

std::vector<nghttp2_nv> to_nva(const header_block& headers) {
    std::vector<nghttp2_nv> nva;
    nva.reserve(headers.size());
    for (const auto& h : headers) {
        nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                                 reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                                 h.value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nva;
}

bool is_interim_status(const header_block& headers) {
    const std::string* status = find_header(headers, ":status");
    return status && status->size() == 3 && (*status)[0] == '1' && *status != "101";
}

}  // namespace

const std::string* find_header(const header_block& headers, std::string_view name) {
    for (const auto& h : headers)
        if (h.name == name) return &h.value;
    return nullptr;
}

// --- stream ---

stream::~stream() {
    // Bytes the peer sent that nobody will read still count against the connection window.
    if (in_bytes_ == 0) return;
    if (auto c = conn_.lock(); c && !c->dead()) c->consumed(0, in_bytes_);
}

void stream::mark_closed(std::uint32_t error_code) {
    if (closed_) return;
    closed_ = true;
    close_error_ = error_code;
    head_ready_.notify();
    in_ready_.notify();
    out_room_.notify();
    if (on_close_) {
        auto f = std::move(on_close_);
        on_close_ = nullptr;
        f();
    }
}

asio::awaitable<bool> stream::wait_headers() {
    while (!headers_done_ && !closed_) co_await head_ready_.wait();
    co_return headers_done_;
}

// Everything that arrived since the last read, in one piece: the DATA frames a read of the
// connection brought (an origin's are often 8 KiB) go on as one write, not one each. Swapping
// keeps both buffers' capacity, so a long body allocates nothing per piece.
asio::awaitable<stream::read_status> stream::read(std::string& out) {
    while (in_.empty() && !in_ended_ && !closed_) co_await in_ready_.wait();
    if (!in_.empty()) {
        out.swap(in_);
        in_.clear();
        in_bytes_ = 0;
        if (auto c = conn_.lock()) c->consumed(id_, out.size());
        co_return read_status::data;
    }
    co_return in_ended_ ? read_status::end : read_status::reset;
}

asio::awaitable<bool> stream::write(std::string_view data) {
    auto c = conn_.lock();
    if (!c || closed_ || out_ended_) co_return false;
    // Drop what nghttp2 already took, so the buffer holds only what is pending (at most about
    // the high-water mark plus one piece) instead of growing with the whole body.
    if (out_offset_ > 0) {
        out_.erase(0, out_offset_);
        out_offset_ = 0;
    }
    out_.append(data);
    c->resume(*this);
    c.reset();  // never keep the connection alive from a suspended producer
    while (!closed_ && out_.size() - out_offset_ > out_high_water) co_await out_room_.wait();
    co_return !closed_;
}

void stream::finish(header_block trailers) {
    if (out_ended_) return;
    out_ended_ = true;
    out_trailers_ = std::move(trailers);
    if (auto c = conn_.lock()) c->resume(*this);
}

// --- nghttp2 callbacks ---

struct connection::callbacks {
    static connection& self(void* user) { return *static_cast<connection*>(user); }

    static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        connection& c = self(user);
        if (frame->hd.type != NGHTTP2_HEADERS) return 0;
        std::shared_ptr<stream> s = c.find(frame->hd.stream_id);
        if (!s && c.role_ == role::server && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            s = std::make_shared<stream>(c.ex_, frame->hd.stream_id);
            s->conn_ = c.weak_from_this();
            c.streams_.emplace(s->id_, s);
            c.update_idle();
        }
        if (s) s->pending_block_.clear();
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t, void* user) {
        connection& c = self(user);
        std::shared_ptr<stream> s = c.find(frame->hd.stream_id);
        if (!s) return 0;
        std::size_t total = namelen + valuelen + 32;  // RFC 9113 §6.5.2 accounting
        for (const auto& h : s->pending_block_) total += h.name.size() + h.value.size() + 32;
        if (total > c.settings_.max_header_list_bytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST
        s->pending_block_.push_back(header{std::string(reinterpret_cast<const char*>(name), namelen),
                                           std::string(reinterpret_cast<const char*>(value), valuelen)});
        return 0;
    }

    static void headers_received(connection& c, stream& s, const nghttp2_frame* frame) {
        if (c.role_ == role::server) {
            if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
                s.headers_ = std::move(s.pending_block_);
                s.headers_done_ = true;
                c.new_requests_.push_back(c.find(s.id_));
            } else {
                s.trailers_ = std::move(s.pending_block_);
            }
        } else if (!s.headers_done_) {
            if (is_interim_status(s.pending_block_)) {
                s.pending_block_.clear();  // 1xx: the final response follows
            } else {
                s.headers_ = std::move(s.pending_block_);
                s.headers_done_ = true;
                s.head_ready_.notify();
            }
        } else {
            s.trailers_ = std::move(s.pending_block_);
        }
        s.pending_block_.clear();
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        connection& c = self(user);
        if (frame->hd.type == NGHTTP2_GOAWAY) {
            c.goaway_ = true;
            return 0;
        }
        if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
            c.peer_settings_known_ = true;
            return 0;
        }
        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
        std::shared_ptr<stream> s = c.find(frame->hd.stream_id);
        if (!s) return 0;
        if (frame->hd.type == NGHTTP2_HEADERS) headers_received(c, *s, frame);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            s->in_ended_ = true;
            s->in_ready_.notify();
        }
        return 0;
    }

    static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                             void* user) {
        connection& c = self(user);
        std::shared_ptr<stream> s = c.find(id);
        if (!s) {
            nghttp2_session_consume(session, id, len);  // nobody will read it: give the window back
            return 0;
        }
        if (s->discarding_) {
            s->discarded_bytes_ += len;
            nghttp2_session_consume(session, id, len);
            if (s->discarded_bytes_ > discard_budget_bytes)
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
            return 0;
        }
        s->in_.append(reinterpret_cast<const char*>(data), len);
        s->in_bytes_ += len;
        s->in_ready_.notify();
        return 0;
    }

    static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
        connection& c = self(user);
        if (frame->hd.type == NGHTTP2_HEADERS) {
            std::shared_ptr<stream> s = c.find(frame->hd.stream_id);
            if (s && !s->head_sent_) {
                s->head_sent_ = true;
                if (s->reset_requested_)
                    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id_, s->pending_reset_);
            }
        }
        if (c.role_ != role::server) return 0;
        if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            return 0;
        // The response is complete while the request is still open (a denied upload, say). The
        // rest of the request is read and dropped so the client can finish its side; a client
        // that neither finishes nor goes away gets RST_STREAM(NO_ERROR) (RFC 9113 §8.1) after a
        // grace period or past a byte budget. Resetting at once makes some clients (curl 7.88)
        // drop the response they just received.
        std::shared_ptr<stream> s = c.find(frame->hd.stream_id);
        if (s && !s->in_ended_) c.start_discarding(*s);
        return 0;
    }

    static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
        connection& c = self(user);
        auto it = c.streams_.find(id);
        if (it == c.streams_.end()) return 0;
        std::shared_ptr<stream> s = std::move(it->second);
        c.streams_.erase(it);
        s->mark_closed(error_code);
        c.update_idle();
        return 0;
    }

    static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                             nghttp2_data_source*, void* user) {
        connection& c = self(user);
        std::shared_ptr<stream> s = c.find(id);
        if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        const std::size_t pending = s->out_.size() - s->out_offset_;
        const std::size_t n = std::min(pending, length);
        if (n > 0) {
            std::memcpy(buf, s->out_.data() + s->out_offset_, n);
            s->out_offset_ += n;
            s->body_sent_ += n;
            if (s->out_offset_ == s->out_.size()) {
                s->out_.clear();
                s->out_offset_ = 0;
            }
            if (s->out_.size() - s->out_offset_ <= out_high_water) s->out_room_.notify();
        }
        if (s->out_.size() - s->out_offset_ == 0) {
            if (s->out_ended_) {
                *flags |= NGHTTP2_DATA_FLAG_EOF;
                if (!s->out_trailers_.empty()) {
                    auto nva = to_nva(s->out_trailers_);
                    if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0)
                        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                }
                return static_cast<ssize_t>(n);
            }
            if (n == 0) {
                s->out_deferred_ = true;
                return NGHTTP2_ERR_DEFERRED;
            }
        }
        return static_cast<ssize_t>(n);
    }

    // nghttp2 refused a HEADERS frame and reset its stream before any exchange saw it. A request
    // head refused this way still gets its audit record; trailers of a running exchange don't
    // (that exchange records itself).
    static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* user) {
        connection& c = self(user);
        if (c.role_ != role::server || frame->hd.type != NGHTTP2_HEADERS ||
            frame->headers.cat != NGHTTP2_HCAT_REQUEST)
            return 0;
        if (c.on_unserved_request_)
            c.on_unserved_request_(400, std::string("malformed HTTP/2 request: ") + nghttp2_strerror(lib_error));
        if (++c.malformed_requests_ >= max_malformed_requests) c.terminate(NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }

    static int on_error(nghttp2_session*, int, const char* msg, size_t len, void*) {
        log::debug("http2 protocol error", {{"error", std::string(msg, len)}});
        return 0;
    }
};

// --- connection ---

connection::connection(role r, asio::any_io_executor ex, std::unique_ptr<transport> io, settings s)
    : role_(r), ex_(ex), io_(std::move(io)), settings_(s), write_wanted_(ex) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, callbacks::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, callbacks::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, callbacks::on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, callbacks::on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, callbacks::on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, callbacks::on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, callbacks::on_invalid_frame_recv);
    nghttp2_session_callbacks_set_error_callback2(cbs, [](nghttp2_session* sess, int, const char* msg, size_t len,
                                                          void* user) { return callbacks::on_error(sess, 0, msg, len, user); });

    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // We acknowledge DATA ourselves, once it has been forwarded: end-to-end flow control.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, 256 * 1024);
    // Until an origin's SETTINGS arrive its stream limit is unknown: nghttp2 sends one request
    // and holds the others (a burst of first requests on a fresh connection would otherwise
    // exceed a low limit, which some servers answer by closing the connection).
    if (r == role::client) nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
    if (r == role::server)
        nghttp2_session_server_new2(&session_, cbs, this, opt);
    else
        nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);

    std::vector<nghttp2_settings_entry> iv{
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(settings_.stream_window)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list_bytes},
    };
    if (r == role::client) iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, settings_.connection_window);
}

connection::~connection() {
    streams_.clear();
    nghttp2_session_del(session_);
}

std::shared_ptr<stream> connection::find(std::int32_t id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
}

void connection::update_idle() {
    if (deadlines_) deadlines_->streams_open(streams_.size());
}

// The peer left its preface, a header block or a control frame incomplete past the head
// deadline. GOAWAY(ENHANCE_YOUR_CALM) rather than a bare close: a slow but honest client learns
// why, and from the last stream id which requests were never processed and are safe to retry.
void connection::head_deadline_expired() {
    if (dead_ || terminating_) return;
    log::debug("http2 peer too slow sending a frame or header block: closing");
    if (request_head_open() && on_unserved_request_) on_unserved_request_(408, "timeout reading request header");
    terminate(NGHTTP2_ENHANCE_YOUR_CALM);
}

// A request's header block is being received (its HEADERS frame header arrived, naming the
// stream) and no exchange, hence no audit record, exists for it yet. Trailers of a running
// exchange don't count: that exchange records itself.
bool connection::request_head_open() const {
    if (role_ != role::server || !deadlines_ || !deadlines_->frames().header_block_open()) return false;
    std::shared_ptr<stream> s = find(deadlines_->frames().header_block_stream());
    return !s || !s->headers_done_;
}

// Ends the connection on a deadline: GOAWAY, then the transport closes once it is sent (nghttp2
// wants nothing more), or after goaway_grace whatever happens.
void connection::terminate(std::uint32_t error_code) {
    if (dead_ || terminating_) return;
    terminating_ = true;
    goaway_ = true;
    nghttp2_session_terminate_session(session_, error_code);
    kick();
    asio::co_spawn(ex_, close_after_grace(weak_from_this(), ex_), asio::detached);
}

asio::awaitable<void> connection::close_after_grace(std::weak_ptr<connection> weak, asio::any_io_executor ex) {
    asio::steady_timer timer(ex);
    timer.expires_after(goaway_grace);
    co_await timer.async_wait(as_tuple(use_awaitable));
    if (auto c = weak.lock(); c && !c->dead_) c->io_->close();
}

void connection::consumed(std::int32_t id, std::size_t n) {
    if (dead_ || n == 0) return;
    if (id == 0)
        nghttp2_session_consume_connection(session_, n);
    else
        nghttp2_session_consume(session_, id, n);
    // Most reads leave the windows more than half open: no WINDOW_UPDATE due, nothing to wake
    // the writer for (a wake-up per read is a timer cancel and a coroutine resumption).
    if (nghttp2_session_want_write(session_)) kick();
}

void connection::resume(stream& s) {
    if (dead_) return;
    if (s.out_deferred_) {
        s.out_deferred_ = false;
        nghttp2_session_resume_data(session_, s.id_);
    }
    kick();
}

std::shared_ptr<stream> connection::submit_request(const header_block& headers, bool has_body, std::string& error) {
    if (dead_ || goaway_) {
        error = "http2 connection to upstream is closing";
        return nullptr;
    }
    auto nva = to_nva(headers);
    nghttp2_data_provider body{};
    body.read_callback = callbacks::read_body;
    const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), has_body ? &body : nullptr,
                                              nullptr);
    if (id < 0) {
        error = std::string("http2: ") + nghttp2_strerror(id);
        return nullptr;
    }
    auto s = std::make_shared<stream>(ex_, id);
    s->conn_ = weak_from_this();
    s->out_has_body_ = has_body;
    streams_.emplace(id, s);
    update_idle();
    kick();
    return s;
}

bool connection::submit_response(stream& s, const header_block& headers, bool has_body) {
    if (dead_ || s.closed_) return false;
    auto nva = to_nva(headers);
    nghttp2_data_provider body{};
    body.read_callback = callbacks::read_body;
    if (nghttp2_submit_response(session_, s.id_, nva.data(), nva.size(), has_body ? &body : nullptr) != 0) return false;
    s.out_has_body_ = has_body;
    kick();
    return true;
}

void connection::reset(stream& s, std::uint32_t error_code) {
    if (dead_ || s.closed_ || s.reset_requested_) return;
    if (role_ == role::client && !s.head_sent_) {
        // Our request HEADERS are still queued: a RST_STREAM now could overtake them and name a
        // stream the origin never saw (a connection error there). Send it right after them.
        s.reset_requested_ = true;
        s.pending_reset_ = error_code;
        s.out_ended_ = true;
        return;
    }
    s.reset_requested_ = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id_, error_code);
    kick();
}

void connection::shutdown() {
    if (dead_ || goaway_) return;
    goaway_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    kick();
}

bool connection::usable() const {
    if (dead_ || goaway_) return false;
    // Before the peer's SETTINGS, streams beyond the first wait inside nghttp2 (see the
    // constructor) rather than each dialling a connection of its own.
    const uint32_t limit = peer_settings_known_
                               ? nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                               : settings_.max_concurrent_streams;
    return streams_.size() < limit && nghttp2_session_get_next_stream_id(session_) < (1u << 30);
}

void connection::spawn_pending_requests() {
    auto pending = std::move(new_requests_);
    new_requests_.clear();
    for (auto& s : pending)
        if (s && on_request_) on_request_(shared_from_this(), std::move(s));
}

void connection::start_discarding(stream& s) {
    s.discarding_ = true;
    s.discarded_bytes_ += s.in_bytes_;
    if (s.in_bytes_ > 0) nghttp2_session_consume(session_, s.id_, s.in_bytes_);
    s.in_.clear();
    s.in_bytes_ = 0;
    asio::co_spawn(ex_, reset_after_grace(weak_from_this(), find(s.id_)), asio::detached);
}

asio::awaitable<void> connection::reset_after_grace(std::weak_ptr<connection> weak, std::shared_ptr<stream> s) {
    asio::steady_timer timer(s->in_ready_.executor());
    timer.expires_after(discard_grace);
    co_await timer.async_wait(as_tuple(use_awaitable));
    auto c = weak.lock();
    if (c && !s->closed_) c->reset(*s, NGHTTP2_NO_ERROR);
}

void connection::fail() {
    if (dead_) return;
    dead_ = true;
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams) s->mark_closed(NGHTTP2_INTERNAL_ERROR);
    io_->close();
    kick();
}

asio::awaitable<void> connection::read_loop() {
    std::vector<uint8_t> buf(role_ == role::client ? client_read_chunk_bytes : read_chunk_bytes);
    while (!dead_) {
        auto [ec, n] = co_await io_->read_some(asio::buffer(buf));
        if (ec || dead_) break;
        if (deadlines_) deadlines_->received(buf.data(), n);
        const ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), n);
        if (rv < 0) {
            log::debug("http2 session error", {{"error", nghttp2_strerror(static_cast<int>(rv))}});
            break;
        }
        spawn_pending_requests();
        kick();
        if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
    }
    read_done_ = true;
    kick();
}

asio::awaitable<void> connection::write_loop() {
    std::string out;
    while (!dead_) {
        out.clear();
        while (out.size() < write_batch_bytes) {
            const uint8_t* data = nullptr;
            const ssize_t n = nghttp2_session_mem_send(session_, &data);
            if (n < 0) {
                log::debug("http2 send error", {{"error", nghttp2_strerror(static_cast<int>(n))}});
                fail();
                co_return;
            }
            if (n == 0) break;
            out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
        }
        if (!out.empty()) {
            const boost::system::error_code ec = co_await io_->write(asio::buffer(out));
            if (ec) {
                fail();
                co_return;
            }
            continue;
        }
        if (read_done_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))) break;
        co_await write_wanted_.wait();
    }
    io_->close();
}

asio::awaitable<void> connection::run(std::chrono::steady_clock::duration idle,
                                      std::chrono::steady_clock::duration head) {
    deadlines_.emplace(ex_, role_ == role::server, head, idle, [this] { head_deadline_expired(); },
                       [this] {
                           log::debug("http2 connection idle: closing");
                           terminate(NGHTTP2_NO_ERROR);
                       });
    update_idle();
    auto writer_done = std::make_shared<event>(ex_);
    auto writer_state = std::make_shared<bool>(false);
    asio::co_spawn(ex_, run_writer_entry(shared_from_this(), writer_done, writer_state), asio::detached);
    co_await read_loop();
    while (!*writer_state) co_await writer_done->wait();
    fail();
    deadlines_.reset();
    if (on_closed_) {
        auto f = std::move(on_closed_);
        on_closed_ = nullptr;
        f();
    }
}

asio::awaitable<void> connection::run_writer_entry(std::shared_ptr<connection> self, std::shared_ptr<event> done,
                                                   std::shared_ptr<bool> finished) {
    co_await self->write_loop();
    *finished = true;
    done->notify();
}

}  // namespace iron::h2
