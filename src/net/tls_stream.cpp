#include "net/tls_stream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/system_error.hpp>

namespace iron::net::detail {

namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// Small pieces of one write are copied together (one record, one send) up to this much.
constexpr std::size_t gather_limit = 64 * 1024;
// A first piece at least this large is written in place (no copy).
constexpr std::size_t in_place_threshold = 16 * 1024;
// Plaintext per SSL_write: bounds the ciphertext held per call.
constexpr std::size_t max_write = 64 * 1024;
// OpenSSL's record read buffer (with read-ahead): room for a few full records per recv.
constexpr std::size_t read_buffer_bytes = 64 * 1024;

// Per-thread scratch: the ciphertext of the SSL call being made (sent right after it), and the
// gather buffer for writes made of small pieces. A thread serves one SSL call at a time.
struct thread_buffers {
    std::string out;
    std::vector<char> gather;
    thread_buffers() {
        out.reserve(max_write + 4096);
        gather.resize(gather_limit);
    }
};
thread_local thread_buffers tl;

tls_core* core_of(BIO* b) { return static_cast<tls_core*>(BIO_get_data(b)); }

int bio_write(BIO* b, const char* in, int len) {
    BIO_clear_retry_flags(b);
    return core_of(b)->bio_write(in, len);
}

int bio_read(BIO* b, char* out, int len) {
    BIO_clear_retry_flags(b);
    bool retry = false;
    const int n = core_of(b)->bio_read(out, len, retry);
    if (retry) BIO_set_retry_read(b);
    return n;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
    // Output is sent by the stream right after each SSL call, so a flush has nothing to do.
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

int bio_destroy(BIO*) { return 1; }

BIO_METHOD* socket_method() {
    static BIO_METHOD* const m = [] {
        BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "iron tls socket");
        if (!meth) return meth;
        BIO_meth_set_write(meth, bio_write);
        BIO_meth_set_read(meth, bio_read);
        BIO_meth_set_ctrl(meth, bio_ctrl);
        BIO_meth_set_create(meth, bio_create);
        BIO_meth_set_destroy(meth, bio_destroy);
        return meth;
    }();
    return m;
}

error_code ssl_error(unsigned long e) {
    return e ? error_code(static_cast<int>(e), asio::error::get_ssl_category())
             : error_code(asio::ssl::error::unspecified_system_error);
}

error_code sys_error(int e) { return error_code(e, asio::error::get_system_category()); }

}  // namespace

tls_core::tls_core(SSL_CTX* ctx) : ssl_(SSL_new(ctx)) {
    if (!ssl_) throw boost::system::system_error(ssl_error(ERR_get_error()), "tls_stream");
    // Not SSL_MODE_ENABLE_PARTIAL_WRITE: the BIO never blocks, so one SSL_write writes every
    // record it is given and they leave in one send. Not SSL_MODE_RELEASE_BUFFERS either (it frees
    // and reallocates the 17 KiB buffers around every record): release_buffers() drops them when
    // the connection goes idle instead.
    SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read what the socket has, up to a few records, not header then body: one recv per several
    // records instead of two per record.
    SSL_set_read_ahead(ssl_, 1);
    SSL_set_default_read_buffer_len(ssl_, read_buffer_bytes);
    BIO* bio = BIO_new(socket_method());
    if (!bio) {
        SSL_free(ssl_);
        ssl_ = nullptr;
        throw boost::system::system_error(ssl_error(ERR_get_error()), "tls_stream");
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);
}

tls_core::~tls_core() {
    if (ssl_) SSL_free(ssl_);
}

tls_core::tls_core(tls_core&& other) noexcept
    : ssl_(other.ssl_),
      sock_(other.sock_),
      readahead_(other.readahead_),
      pending_(std::move(other.pending_)),
      read_errno_(other.read_errno_),
      write_errno_(other.write_errno_),
      read_eof_(other.read_eof_),
      expect_input_wait_(other.expect_input_wait_),
      last_recv_full_(other.last_recv_full_),
      ticket_deferred_(other.ticket_deferred_),
      tickets_(other.tickets_) {
    other.ssl_ = nullptr;
    if (ssl_) BIO_set_data(SSL_get_rbio(ssl_), this);
}

void tls_core::release_buffers() noexcept {
    if (SSL_is_init_finished(ssl_)) SSL_free_buffers(ssl_);
}

bool tls_core::input_buffered() const noexcept {
    return SSL_has_pending(ssl_) || (readahead_ && readahead_->buffered() > 0);
}

int tls_core::bio_read(char* out, int len, bool& retry) {
    if (len <= 0) return 0;
    if (readahead_) {
        if (std::size_t n = readahead_->read_buffered(out, static_cast<std::size_t>(len)); n > 0)
            return static_cast<int>(n);
    }
    if (!tl.out.empty()) {
        // This SSL call has produced output that is not even sent yet (a handshake flight, a
        // close_notify): the peer cannot have answered it, so skip the recv that would only say
        // EAGAIN. The caller sends the output, then waits for readability, which reports any
        // bytes that were already there; nothing is lost, one syscall is saved.
        retry = true;
        return -1;
    }
    if (!sock_ || !sock_->is_open()) {
        read_errno_ = EBADF;
        return -1;
    }
    for (;;) {
        const ssize_t n = ::recv(sock_->native_handle(), out, static_cast<std::size_t>(len), MSG_DONTWAIT);
        if (n > 0) {
            last_recv_full_ = n == len;
            return static_cast<int>(n);
        }
        last_recv_full_ = false;
        if (n == 0) {
            read_eof_ = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            retry = true;
            return -1;
        }
        read_errno_ = errno;
        return -1;
    }
}

int tls_core::bio_write(const char* in, int len) {
    if (write_errno_) return -1;
    if (len <= 0) return 0;
    tl.out.append(in, static_cast<std::size_t>(len));
    return len;
}

void tls_core::send_output(error_code& ec) {
    std::string& out = tl.out;
    if (out.empty()) return;
    std::size_t off = 0;
    if (write_errno_) {
        out.clear();
        ec = sys_error(write_errno_);
        return;
    }
    if (pending_.empty()) {  // else it queues behind what is already waiting
        if (!sock_ || !sock_->is_open()) {
            write_errno_ = EBADF;
        } else {
            while (off < out.size()) {
                const ssize_t n = ::send(sock_->native_handle(), out.data() + off, out.size() - off,
                                         MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0) {
                    off += static_cast<std::size_t>(n);
                    continue;
                }
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) write_errno_ = errno;
                break;
            }
        }
        if (write_errno_) {
            out.clear();
            ec = sys_error(write_errno_);
            return;
        }
    }
    if (off < out.size()) pending_.append(out, off, std::string::npos);
    out.clear();
}

void tls_core::flush(error_code& ec) {
    if (pending_.empty()) return;
    if (write_errno_ || !sock_ || !sock_->is_open()) {
        if (!write_errno_) write_errno_ = EBADF;
        std::string().swap(pending_);
        ec = sys_error(write_errno_);
        return;
    }
    std::size_t off = 0;
    while (off < pending_.size()) {
        const ssize_t n = ::send(sock_->native_handle(), pending_.data() + off, pending_.size() - off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        write_errno_ = errno;
        std::string().swap(pending_);
        ec = sys_error(write_errno_);
        return;
    }
    pending_.erase(0, off);
    if (pending_.empty()) std::string().swap(pending_);  // give the memory back
}

tls_core::want tls_core::classify(int ret, error_code& ec) {
    const int err = SSL_get_error(ssl_, ret);
    error_code send_ec;
    send_output(send_ec);
    switch (err) {
        case SSL_ERROR_WANT_READ:
            if (send_ec) {
                ec = send_ec;
                return want::done;
            }
            return want::input;
        case SSL_ERROR_ZERO_RETURN:
            ec = asio::error::eof;  // the peer's close_notify
            return want::done;
        case SSL_ERROR_SYSCALL:
            if (read_errno_) ec = sys_error(read_errno_);
            else if (write_errno_) ec = sys_error(write_errno_);
            else if (read_eof_) ec = asio::ssl::error::stream_truncated;
            else ec = ssl_error(ERR_get_error());
            return want::done;
        case SSL_ERROR_SSL:
            if (read_eof_ && ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                ERR_clear_error();
                ec = asio::ssl::error::stream_truncated;  // EOF without close_notify, as asio says it
                return want::done;
            }
            ec = ssl_error(ERR_get_error());
            return want::done;
        default:  // WANT_WRITE and the like cannot happen: the BIO never blocks a write
            if (send_ec) ec = send_ec;
            else if (read_errno_) ec = sys_error(read_errno_);
            else ec = ssl_error(ERR_get_error());
            return want::done;
    }
}

namespace {
struct call_guard {
    explicit call_guard(int& re, bool& eof) {
        // SSL_get_error needs an empty error queue before the call. It almost always is empty, and
        // ERR_clear_error resets all 16 slots regardless (~800 instructions, 4 calls per request),
        // while ERR_peek_error only looks whether anything is queued.
        if (ERR_peek_error() != 0) ERR_clear_error();
        re = 0;
        eof = false;
    }
};
}  // namespace

tls_core::want tls_core::handshake(bool server, error_code& ec) {
    call_guard g(read_errno_, read_eof_);
    if (server && !ticket_deferred_) {
        // TLS 1.3 session tickets go out with our first write (the response) instead of right
        // after the handshake: same tickets, but one send (and one wake-up of the client) fewer
        // per connection. TLS 1.2 tickets are part of the handshake and are not affected.
        ticket_deferred_ = true;
        tickets_ = SSL_get_num_tickets(ssl_);
        SSL_set_num_tickets(ssl_, 0);
    }
    const int r = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (r == 1) {
        if (!server || SSL_version(ssl_) < TLS1_3_VERSION) tickets_ = 0;
        send_output(ec);
        return want::done;
    }
    return classify(r, ec);
}

tls_core::want tls_core::read(void* data, std::size_t size, std::size_t& got, error_code& ec) {
    got = 0;
    if (size == 0) return want::done;
    call_guard g(read_errno_, read_eof_);
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, data, std::min<std::size_t>(size, INT_MAX), &n);
    if (r != 1) return classify(r, ec);
    got = n;
    // One record per SSL_read: while more is at hand (decrypted or buffered bytes, or a socket
    // that filled the last recv), fill the caller's buffer, so a download moves in large pieces.
    while (got < size && (SSL_has_pending(ssl_) || last_recv_full_)) {
        last_recv_full_ = false;
        char* p = static_cast<char*>(data) + got;
        if (SSL_read_ex(ssl_, p, std::min<std::size_t>(size - got, INT_MAX), &n) != 1) {
            // Nothing more now (or an error, which the next read reports): keep what we have.
            ERR_clear_error();
            break;
        }
        got += n;
    }
    send_output(ec);
    return want::done;
}

tls_core::want tls_core::write(const void* data, std::size_t size, std::size_t& put, error_code& ec) {
    put = 0;
    if (size == 0) return want::done;
    call_guard g(read_errno_, read_eof_);
    // Queued here, not after the handshake: OpenSSL would send them on the next SSL_read too.
    for (; tickets_ > 0; --tickets_) SSL_new_session_ticket(ssl_);
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, data, std::min(size, max_write), &n);
    if (r == 1) {
        put = n;
        send_output(ec);
        return want::done;
    }
    return classify(r, ec);
}

tls_core::want tls_core::shutdown(error_code& ec) {
    call_guard g(read_errno_, read_eof_);
    // As asio::ssl::stream: send close_notify, then wait for the peer's.
    int r = SSL_shutdown(ssl_);
    if (r == 0) r = SSL_shutdown(ssl_);
    if (r == 1) {
        send_output(ec);
        return want::done;
    }
    return classify(r, ec);
}

boost::asio::const_buffer gather_for_write(const boost::asio::const_buffer* bufs, std::size_t count) {
    if (count == 0) return {};
    if (count == 1 || bufs[0].size() >= in_place_threshold)
        return {bufs[0].data(), std::min(bufs[0].size(), max_write)};
    char* dst = tl.gather.data();
    std::size_t used = 0;
    for (std::size_t i = 0; i < count && used < gather_limit; ++i) {
        const std::size_t take = std::min(bufs[i].size(), gather_limit - used);
        std::memcpy(dst + used, bufs[i].data(), take);
        used += take;
    }
    return {dst, used};
}

bool write_step::is_scratch(boost::asio::const_buffer b) {
    const char* p = static_cast<const char*>(b.data());
    return p >= tl.gather.data() && p < tl.gather.data() + tl.gather.size();
}

}  // namespace iron::net::detail
