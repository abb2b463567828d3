#pragma once
// One HTTP/2 connection driven by nghttp2, for either side of the proxy: the client-facing server
// session (role::server) and the origin-facing client session (role::client). The connection owns
// the nghttp2 session and runs two loops on the worker's thread: one feeds received bytes to
// nghttp2, the other writes what nghttp2 wants sent. Everything runs on one thread, so the
// per-stream queues below need no locks.
//
// Flow control is end to end: received DATA is acknowledged (WINDOW_UPDATE) only when the
// exchange takes it off the stream's queue to forward it, and a stream's outgoing queue blocks its
// producer past a high-water mark. So a fast sender never makes the proxy buffer more than about
// one window per stream, whatever the body size.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "h2/deadlines.hpp"
#include "h2/event.hpp"

struct nghttp2_session;

namespace iron::h2 {

struct header {
    std::string name;  // lower-case on the wire; pseudo-headers start with ':'
    std::string value;
};
using header_block = std::vector<header>;

// The first value of `name` (exact, lower-case), or nullptr.
const std::string* find_header(const header_block& headers, std::string_view name);

// Byte I/O under the session: a TLS stream (owned, or borrowed from the caller's frame).
class transport {
public:
    virtual ~transport() = default;
    virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_some(
        boost::asio::mutable_buffer buf) = 0;
    virtual boost::asio::awaitable<boost::system::error_code> write(boost::asio::const_buffer buf) = 0;
    virtual void close() = 0;
};

class connection;

// One stream, shared between the connection (until nghttp2 closes it) and the exchange using it.
class stream {
public:
    stream(boost::asio::any_io_executor ex, std::int32_t id) : id_(id), head_ready_(ex), in_ready_(ex), out_room_(ex) {}
    ~stream();

    std::int32_t id() const { return id_; }

    // --- what the peer sent ---
    // Request headers (server) or the final response headers (client), pseudo-headers included.
    const header_block& headers() const { return headers_; }
    // The peer's trailers, once its side ended with them.
    const header_block& trailers() const { return trailers_; }
    // Client role: waits until the final response headers arrived or the stream ended.
    boost::asio::awaitable<bool> wait_headers();

    enum class read_status { data, end, reset };
    // The peer's body bytes received so far and not yet read, into `out` (replacing its content,
    // swapping buffers: `out` keeps no other bytes); `end` once the peer
    // finished its side (trailers are then available), `reset` if the stream or connection died.
    boost::asio::awaitable<read_status> read(std::string& out);
    bool peer_done() const { return in_ended_; }
    // The peer ended its side and every byte it sent has been read: no body left to forward.
    bool fully_read() const { return in_ended_ && in_.empty(); }
    // Body bytes have arrived that no read took yet.
    bool has_unread() const { return !in_.empty(); }

    // --- what we send (after submit_request / submit_response with a body) ---
    // Queues body bytes; suspends while more than the high-water mark is waiting for the peer's
    // flow-control window. False once the stream is closed.
    boost::asio::awaitable<bool> write(std::string_view data);
    // Ends our side, with trailers if any. Body bytes still queued go first.
    void finish(header_block trailers = {});

    bool closed() const { return closed_; }
    std::uint32_t close_error() const { return close_error_; }
    // Body bytes of ours that went into DATA frames so far (what a cut stream's record reports).
    std::uint64_t body_bytes_sent() const { return body_sent_; }
    // Runs once when the stream closes, however it closes (the peer's reset, the connection
    // dying, or the normal end): how a client's cancel reaches the upstream side at once. Runs
    // at once if the stream is already closed.
    void on_close(std::function<void()> f) {
        if (closed_ && f) f();
        else on_close_ = std::move(f);
    }

private:
    friend class connection;
    std::int32_t id_;
    std::weak_ptr<connection> conn_;
    void mark_closed(std::uint32_t error_code);

    header_block headers_;
    header_block pending_block_;  // the header block being received
    header_block trailers_;
    bool headers_done_ = false;
    event head_ready_;

    std::string in_;  // received body bytes not yet read (at most about one stream window)
    std::size_t in_bytes_ = 0;
    bool in_ended_ = false;
    event in_ready_;

    std::string out_;
    std::size_t out_offset_ = 0;
    bool out_ended_ = false;
    bool out_deferred_ = false;
    bool out_has_body_ = false;
    header_block out_trailers_;
    event out_room_;
    std::uint64_t body_sent_ = 0;

    bool closed_ = false;
    std::uint32_t close_error_ = 0;
    std::function<void()> on_close_;
    bool head_sent_ = false;          // our HEADERS for this stream went out
    std::uint32_t pending_reset_ = 0;  // a reset asked for before that (sent right after it)
    bool reset_requested_ = false;
    bool discarding_ = false;  // our response ended first: the peer's remaining body is dropped
    std::size_t discarded_bytes_ = 0;
};

struct settings {
    std::uint32_t max_concurrent_streams = 100;
    std::int32_t stream_window = 256 * 1024;
    // Several slow streams may each hold a full stream window before others stall.
    std::int32_t connection_window = 4 * 1024 * 1024;
    std::uint32_t max_header_list_bytes = 64 * 1024;
};

class connection : public std::enable_shared_from_this<connection> {
public:
    enum class role { server, client };
    // Server role: called (on the connection's thread, outside nghttp2 callbacks) for each stream
    // whose request headers are complete.
    using request_handler = std::function<void(std::shared_ptr<connection>, std::shared_ptr<stream>)>;

    connection(role r, boost::asio::any_io_executor ex, std::unique_ptr<transport> io, settings s);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    void on_request(request_handler h) { on_request_ = std::move(h); }
    // Called once when the connection is over (client pools forget it).
    void on_closed(std::function<void()> f) { on_closed_ = std::move(f); }
    // Server role: called for a request that never became an exchange, so that it still gets its
    // one audit record — (408, "timeout reading request header") when the head deadline cuts the
    // connection inside a request's header block; (400, "malformed HTTP/2 request: …") when
    // nghttp2 refuses a request head (RFC 9113 §8.1.1: two `host` fields, a forbidden
    // connection-specific field, a bad pseudo-header) and resets the stream itself.
    using unserved_request_handler = std::function<void(unsigned status, std::string_view reason)>;
    void on_unserved_request(unserved_request_handler f) { on_unserved_request_ = std::move(f); }

    // Runs the connection until either side ends it. `idle` ends it after that long with no open
    // stream; `head` when the peer leaves its opening (preface, SETTINGS), a header block or
    // any other frame but DATA's payload incomplete that long (see deadlines.hpp). 0 = never.
    boost::asio::awaitable<void> run(std::chrono::steady_clock::duration idle,
                                     std::chrono::steady_clock::duration head = {});

    // Client role: opens a stream with these headers (pseudo-headers first). With `has_body` the
    // body follows through stream::write / finish.
    std::shared_ptr<stream> submit_request(const header_block& headers, bool has_body, std::string& error);
    // Server role: the response head for a stream; with `has_body` the body follows.
    bool submit_response(stream& s, const header_block& headers, bool has_body);
    void reset(stream& s, std::uint32_t error_code);
    // Stops accepting new streams (GOAWAY); open ones finish.
    void shutdown();

    bool usable() const;  // client role: alive, no GOAWAY, below the peer's stream limit
    std::size_t open_streams() const { return streams_.size(); }
    bool dead() const { return dead_; }
    boost::asio::any_io_executor executor() const { return ex_; }

    // Internal, for stream: acknowledges consumed bytes and wakes the writer.
    void consumed(std::int32_t id, std::size_t n);
    void resume(stream& s);

private:
    struct callbacks;
    friend struct callbacks;

    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();
    void kick() { write_wanted_.notify(); }
    void fail();
    void spawn_pending_requests();
    std::shared_ptr<stream> find(std::int32_t id) const;
    static boost::asio::awaitable<void> run_writer_entry(std::shared_ptr<connection> self,
                                                         std::shared_ptr<event> done, std::shared_ptr<bool> finished);
    void update_idle();
    void head_deadline_expired();
    bool request_head_open() const;
    void terminate(std::uint32_t error_code);
    static boost::asio::awaitable<void> close_after_grace(std::weak_ptr<connection> weak,
                                                        boost::asio::any_io_executor ex);
    void start_discarding(stream& s);
    static boost::asio::awaitable<void> reset_after_grace(std::weak_ptr<connection> weak, std::shared_ptr<stream> s);

    role role_;
    boost::asio::any_io_executor ex_;
    std::unique_ptr<transport> io_;
    settings settings_;
    nghttp2_session* session_ = nullptr;
    std::unordered_map<std::int32_t, std::shared_ptr<stream>> streams_;
    std::vector<std::shared_ptr<stream>> new_requests_;
    request_handler on_request_;
    std::function<void()> on_closed_;
    unserved_request_handler on_unserved_request_;
    // Request heads nghttp2 refused on this connection; past a bound the connection is ended
    // (each costs the peer a few bytes and us an audit record).
    unsigned malformed_requests_ = 0;
    event write_wanted_;
    bool dead_ = false;
    bool goaway_ = false;
    bool peer_settings_known_ = false;  // the peer's SETTINGS frame arrived
    bool read_done_ = false;
    bool terminating_ = false;  // a deadline ended the connection: GOAWAY sent or on its way
    std::optional<connection_deadlines> deadlines_;  // while run() runs
};

}  // namespace iron::h2
