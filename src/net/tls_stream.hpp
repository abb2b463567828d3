#pragma once
// net::tls_stream: the TLS stream under every MITM client connection and every TLS upstream
// connection. A lean replacement for boost::asio::ssl::stream with the same surface for what this
// code base uses (construction from a next layer and an ssl::context, native_handle, next_layer,
// lowest_layer, get_executor, async_handshake, async_read_some, async_write_some, async_shutdown)
// and the same error codes (asio::error::eof after a close_notify, ssl::error::stream_truncated
// for an EOF without one, OpenSSL errors in asio's ssl category, socket errors as system errors).
// Like asio::ssl::stream it allows one read and one write in flight at the same time.
//
// Why: asio::ssl::stream keeps per connection two 17 KiB transfer vectors (zero-filled, so
// resident) plus a BIO pair holding two more 17 KiB buffers, and copies every byte through them:
// ~60 KiB of the ~78 KiB an idle MITM connection cost (heaptrack, docs/performance.md). Here
// OpenSSL reads the socket itself through a small BIO (recv with MSG_DONTWAIT; bytes the protocol
// sniff or the CONNECT handling already read come first), and what it writes lands in a
// per-thread scratch buffer that goes out with one send() after each SSL call, so several records
// produced by one SSL_write cost one syscall and nothing is kept per connection between writes
// (only when the kernel's send buffer is full does the rest wait in the connection until the
// socket is writable). OpenSSL's own record buffers are released while idle
// (SSL_MODE_RELEASE_BUFFERS, SSL_free_buffers).
#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/system/system_error.hpp>

#include "net/client_socket.hpp"

namespace iron::net {

namespace detail {

using tls_socket_layer = boost::asio::ip::tcp::socket::lowest_layer_type;

// The non-template part: the SSL object, its BIO and the queue of unsent output.
class tls_core {
public:
    enum class want { done, input };

    explicit tls_core(SSL_CTX* ctx);
    ~tls_core();
    tls_core(tls_core&& other) noexcept;
    tls_core& operator=(tls_core&&) = delete;
    tls_core(const tls_core&) = delete;

    // Where the BIO reads and writes: the socket (looked up on every call, never a cached fd, so
    // a socket closed by a watchdog is never confused with a reused descriptor) and, for client
    // connections, the bytes already read ahead of the TLS stream.
    void bind(tls_socket_layer* sock, client_socket* readahead) noexcept {
        sock_ = sock;
        readahead_ = readahead;
    }
    SSL* ssl() const noexcept { return ssl_; }
    tls_socket_layer& socket() const noexcept { return *sock_; }

    // One SSL call each, followed by a send of what it produced. `done`: finished (ec says how);
    // `input`: call again once the socket is readable.
    want handshake(bool server, boost::system::error_code& ec);
    want read(void* data, std::size_t size, std::size_t& got, boost::system::error_code& ec);
    want write(const void* data, std::size_t size, std::size_t& put, boost::system::error_code& ec);
    want shutdown(boost::system::error_code& ec);

    // Forgets the TLS 1.3 session tickets deferred to the first write (server side).
    void drop_deferred_tickets() noexcept { tickets_ = 0; }

    // Output OpenSSL produced that the socket did not take yet.
    bool output_pending() const noexcept { return !pending_.empty(); }
    std::size_t pending_size() const noexcept { return pending_.size(); }

    // Whether the last read had to wait for the socket (then the next one waits first), and
    // whether input is already at hand (OpenSSL's buffer, bytes read ahead of the stream).
    bool expect_input_wait() const noexcept { return expect_input_wait_; }
    void expect_input_wait(bool v) noexcept { expect_input_wait_ = v; }
    bool input_buffered() const noexcept;
    // Frees OpenSSL's record buffers unless they hold data (called before waiting for input).
    void release_buffers() noexcept;
    // The last recv filled all the room it was given: the socket probably holds more (a stream).
    bool more_input_likely() const noexcept { return last_recv_full_; }
    // Sends queued output (after the socket became writable). Errors land in ec.
    void flush(boost::system::error_code& ec);

    // The BIO's callbacks.
    int bio_read(char* out, int len, bool& retry);
    int bio_write(const char* in, int len);

private:
    want classify(int ret, boost::system::error_code& ec);
    void send_output(boost::system::error_code& ec);

    SSL* ssl_ = nullptr;
    tls_socket_layer* sock_ = nullptr;
    client_socket* readahead_ = nullptr;
    std::string pending_;  // unsent ciphertext (only while the socket's send buffer is full)
    int read_errno_ = 0;
    int write_errno_ = 0;
    bool read_eof_ = false;
    bool expect_input_wait_ = true;
    bool last_recv_full_ = false;
    bool ticket_deferred_ = false;
    std::size_t tickets_ = 0;  // TLS 1.3 session tickets to send with the first write (server)
};

// Gathers a buffer sequence for one SSL_write: a large first buffer is used in place; small
// pieces (an HTTP head and a small body) are copied into a per-thread scratch buffer so they
// become one TLS record and one send.
boost::asio::const_buffer gather_for_write(const boost::asio::const_buffer* bufs, std::size_t count);

template <class MutableBuffers>
boost::asio::mutable_buffer first_non_empty(const MutableBuffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers), end = boost::asio::buffer_sequence_end(buffers);
         it != end; ++it) {
        boost::asio::mutable_buffer b(*it);
        if (b.size() != 0) return b;
    }
    return {};
}

template <class ConstBuffers>
boost::asio::const_buffer gather(const ConstBuffers& buffers) {
    constexpr std::size_t max_pieces = 16;
    boost::asio::const_buffer pieces[max_pieces];
    std::size_t n = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers), end = boost::asio::buffer_sequence_end(buffers);
         it != end && n < max_pieces; ++it) {
        boost::asio::const_buffer b(*it);
        if (b.size() == 0) continue;
        pieces[n++] = b;
    }
    return gather_for_write(pieces, n);
}

// One composed operation for every kind of call: run the SSL step, wait for readability when it
// needs input, wait for writability while output it queued is unsent, and never complete inside
// the initiating function (the completion is posted instead, as asio::ssl::stream does).
// Output queued by the other direction's operation is that operation's to wait for: a read never
// waits for a stalled write (full duplex, as with asio::ssl::stream).
template <class Step, bool WithBytes>
struct tls_op {
    tls_core* core;
    Step step;
    boost::system::error_code ec{};
    std::size_t bytes = 0;
    enum : unsigned char { start, after_read_wait, after_write_wait, posted } state = start;
    bool finished = false;
    bool waited = false;
    bool owes_output = false;  // this operation queued output that is not sent yet

    template <class Self>
    void operator()(Self& self, boost::system::error_code wait_ec = {}) {
        namespace asio = boost::asio;
        switch (state) {
            case posted:
                return complete(self);
            case after_read_wait:
            case after_write_wait:
                waited = true;
                if (wait_ec) {
                    // The socket was closed or the wait cancelled; the stream may be going away,
                    // so complete without touching it.
                    if (!finished || !ec) ec = wait_ec;
                    return complete(self);
                }
                if (state == after_write_wait) {
                    core->flush(ec);
                    if (ec) return finish(self);
                    owes_output = core->output_pending();
                }
                break;
            case start:
                if constexpr (requires { Step::starts_owing_output; }) owes_output = core->output_pending();
                if (step.wait_first(*core)) {
                    // Nothing buffered and the last read had to wait: wait before reading, which
                    // saves a recv that would only say EAGAIN (keep-alive requests, responses).
                    core->release_buffers();
                    state = after_read_wait;
                    core->socket().async_wait(asio::socket_base::wait_read, std::move(self));
                    return;
                }
                break;
        }
        for (;;) {
            if (!finished) {
                const std::size_t queued_before = core->pending_size();
                const tls_core::want w = step(*core, bytes, ec);
                if (core->pending_size() > queued_before) owes_output = true;
                if (w == tls_core::want::done) {
                    finished = true;
                    if (ec) break;  // failed: whatever is queued is moot
                } else if (!owes_output) {
                    core->release_buffers();  // idle until the peer speaks: keep no record buffers
                    state = after_read_wait;
                    core->socket().async_wait(asio::socket_base::wait_read, std::move(self));
                    return;
                }
            }
            if (owes_output) {
                state = after_write_wait;
                core->socket().async_wait(asio::socket_base::wait_write, std::move(self));
                return;
            }
            if (finished) break;
        }
        step.done(*core, waited);
        if (!waited) {
            state = posted;
            asio::post(std::move(self));
            return;
        }
        complete(self);
    }

    template <class Self>
    void finish(Self& self) {
        step.done(*core, waited);
        complete(self);
    }

    template <class Self>
    void complete(Self& self) {
        if constexpr (WithBytes) self.complete(ec, bytes);
        else self.complete(ec);
    }
};

struct step_base {
    static bool wait_first(const tls_core&) { return false; }
    static void done(tls_core&, bool) {}
};
struct handshake_step : step_base {
    bool server;
    tls_core::want operator()(tls_core& c, std::size_t&, boost::system::error_code& ec) const {
        return c.handshake(server, ec);
    }
};
struct read_step {
    boost::asio::mutable_buffer buf;
    static bool wait_first(const tls_core& c) { return c.expect_input_wait() && !c.input_buffered(); }
    static void done(tls_core& c, bool waited) { c.expect_input_wait(waited && !c.more_input_likely()); }
    tls_core::want operator()(tls_core& c, std::size_t& n, boost::system::error_code& ec) const {
        return c.read(buf.data(), buf.size(), n, ec);
    }
};
struct write_step : step_base {
    boost::asio::const_buffer buf;
    std::string saved;  // the gathered bytes, if OpenSSL ever asks for the same write again
    tls_core::want operator()(tls_core& c, std::size_t& n, boost::system::error_code& ec) {
        const boost::asio::const_buffer b = saved.empty() ? buf : boost::asio::buffer(saved);
        const tls_core::want w = c.write(b.data(), b.size(), n, ec);
        if (w != tls_core::want::done && saved.empty() && is_scratch(buf)) {
            // The per-thread gather buffer is reused by the next write on this thread.
            saved.assign(static_cast<const char*>(buf.data()), buf.size());
        }
        return w;
    }
    static bool is_scratch(boost::asio::const_buffer b);
};
// Nothing to do but let queued output leave: the operation starts out owing it.
struct flush_step : step_base {
    static constexpr bool starts_owing_output = true;
    tls_core::want operator()(tls_core&, std::size_t&, boost::system::error_code&) const {
        return tls_core::want::done;
    }
};
struct shutdown_step : step_base {
    tls_core::want operator()(tls_core& c, std::size_t&, boost::system::error_code& ec) const {
        return c.shutdown(ec);
    }
};

inline client_socket* readahead_of(client_socket& s) { return &s; }
template <class T>
client_socket* readahead_of(T&) {
    return nullptr;
}

}  // namespace detail

template <class Next>
class tls_stream : public boost::asio::ssl::stream_base {
public:
    using next_layer_type = Next;
    using lowest_layer_type = typename Next::lowest_layer_type;
    using executor_type = typename Next::executor_type;
    using native_handle_type = SSL*;

    tls_stream(Next next, boost::asio::ssl::context& ctx) : next_(std::move(next)), core_(ctx.native_handle()) {
        core_.bind(&next_.lowest_layer(), detail::readahead_of(next_));
    }
    tls_stream(tls_stream&& other) noexcept : next_(std::move(other.next_)), core_(std::move(other.core_)) {
        core_.bind(&next_.lowest_layer(), detail::readahead_of(next_));
    }
    tls_stream& operator=(tls_stream&&) = delete;

    executor_type get_executor() noexcept { return next_.get_executor(); }
    SSL* native_handle() noexcept { return core_.ssl(); }
    Next& next_layer() noexcept { return next_; }
    const Next& next_layer() const noexcept { return next_; }
    lowest_layer_type& lowest_layer() noexcept { return next_.lowest_layer(); }
    const lowest_layer_type& lowest_layer() const noexcept { return next_.lowest_layer(); }

    // Server side, after the handshake: send none of the TLS 1.3 session tickets that would go
    // out with the first write. For a client that cannot use them (tls::client_can_use_tickets).
    void skip_session_tickets() noexcept { core_.drop_deferred_tickets(); }

    template <class Token>
    auto async_handshake(handshake_type type, Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code)>(
            detail::tls_op<detail::handshake_step, false>{&core_, {{}, type == server}}, token, core_.socket());
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            detail::tls_op<detail::read_step, true>{&core_, {detail::first_non_empty(buffers)}}, token,
            core_.socket());
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            detail::tls_op<detail::write_step, true>{&core_, {{}, detail::gather(buffers), {}}}, token, core_.socket());
    }

    // Non-waiting forms, for a relay that tries the cheap path before an asynchronous operation.
    // Every asynchronous completion is posted, and each post costs the worker a trip through the
    // scheduler (an epoll_wait with timeout 0); a 10 MiB transfer made three per 32 KiB piece.
    // read_some and write_some do what can be done now, else fail with
    // boost::asio::error::would_block having consumed nothing: a read that would wait for the
    // socket says so without a recv that would only say EAGAIN (as the asynchronous read does),
    // and a write is refused while earlier output is still queued. A write the kernel did not take
    // whole leaves the rest queued (output_pending()): the caller awaits async_flush() before it
    // goes on, as the asynchronous write would have waited.
    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
        ec = {};
        const boost::asio::mutable_buffer first = detail::first_non_empty(buffers);
        if (first.size() == 0) return 0;
        if (core_.expect_input_wait() && !core_.input_buffered()) {
            ec = boost::asio::error::would_block;
            return 0;
        }
        std::size_t n = 0;
        if (core_.read(first.data(), first.size(), n, ec) == detail::tls_core::want::input) {
            core_.expect_input_wait(true);
            ec = boost::asio::error::would_block;
            return 0;
        }
        core_.expect_input_wait(false);
        return n;
    }

    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
        ec = {};
        if (core_.output_pending()) {
            ec = boost::asio::error::would_block;
            return 0;
        }
        const boost::asio::const_buffer b = detail::gather(buffers);
        std::size_t n = 0;
        if (core_.write(b.data(), b.size(), n, ec) == detail::tls_core::want::input) {
            ec = boost::asio::error::would_block;  // OpenSSL wants the same bytes again later
            return 0;
        }
        return n;
    }

    // The throwing forms complete Asio's SyncReadStream / SyncWriteStream, which Beast checks for.
    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers) {
        boost::system::error_code ec;
        const std::size_t n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec, "tls_stream::read_some");
        return n;
    }
    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers) {
        boost::system::error_code ec;
        const std::size_t n = write_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec, "tls_stream::write_some");
        return n;
    }

    bool output_pending() const noexcept { return core_.output_pending(); }

    // Completes once output queued by write_some() has left (at once when there is none).
    template <class Token>
    auto async_flush(Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code)>(
            detail::tls_op<detail::flush_step, false>{&core_, {}}, token, core_.socket());
    }

    template <class Token>
    auto async_shutdown(Token&& token) {
        return boost::asio::async_compose<Token, void(boost::system::error_code)>(
            detail::tls_op<detail::shutdown_step, false>{&core_, {}}, token, core_.socket());
    }

private:
    Next next_;
    detail::tls_core core_;
};

}  // namespace iron::net
