#pragma once
// Graceful shutdown's view of the client connections of one worker thread.
//
// Every client connection registers a live_connection for as long as its handler runs (the object
// lives in the handler's outermost frame). On SIGTERM/SIGINT the main thread asks each worker to
// drain: a connection with nothing in flight is closed at once; one with an exchange or a relay in
// flight finishes it and then closes (the HTTP/1.1 session answers with `Connection: close`,
// HTTP/2 sends GOAWAY). When proxy.shutdown_timeout expires, whatever is still open is cut: its
// client socket is shut down, its cut hook closes the upstream side, and the records of the
// exchanges on it say "cut at shutdown".
//
// Everything here runs on the connection's own worker thread, except live_connections::open(),
// which the main thread polls: the request path takes no lock and touches no shared cache line
// (one relaxed atomic per connection, on the worker's own registry).
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <functional>

namespace iron::net {

class live_connections;

class live_connection {
public:
    // `fd` is the client socket. With a null `owner` (unit tests, tools) nothing is registered
    // and the connection never drains.
    live_connection(live_connections* owner, int fd) noexcept;
    ~live_connection();
    live_connection(const live_connection&) = delete;
    live_connection& operator=(const live_connection&) = delete;

    // The process is shutting down: finish what is in flight, start nothing new, then close.
    bool draining() const noexcept;
    // The shutdown timeout expired with this connection still open, and it was cut.
    bool cut() const noexcept { return cut_; }

    // While one lives, the connection has an exchange (or a relay) in flight: a drain waits for
    // it rather than closing the connection. Null-safe.
    class work_scope {
    public:
        explicit work_scope(live_connection* c) noexcept : c_(c) {
            if (c_) ++c_->busy_;
        }
        ~work_scope() {
            if (c_) --c_->busy_;
        }
        work_scope(const work_scope&) = delete;
        work_scope& operator=(const work_scope&) = delete;

    private:
        live_connection* c_;
    };

    // While one lives, a cut also runs `fn(ctx)`: it closes what shutting down the client socket
    // would not wake, e.g. the upstream connection a relay is reading from. Null-safe.
    class cut_hook {
    public:
        cut_hook(live_connection* c, void (*fn)(void*), void* ctx) noexcept : c_(c) {
            if (!c_) return;
            saved_fn_ = c_->hook_fn_;
            saved_ctx_ = c_->hook_ctx_;
            c_->hook_fn_ = fn;
            c_->hook_ctx_ = ctx;
        }
        ~cut_hook() {
            if (!c_) return;
            c_->hook_fn_ = saved_fn_;
            c_->hook_ctx_ = saved_ctx_;
        }
        cut_hook(const cut_hook&) = delete;
        cut_hook& operator=(const cut_hook&) = delete;

    private:
        live_connection* c_;
        void (*saved_fn_)(void*) = nullptr;
        void* saved_ctx_ = nullptr;
    };

    // An HTTP/1.1 session waiting for its next request: with no work in flight the connection is
    // idle, unless `pending(ctx)` says part of the next request head has already arrived (that
    // request is then served, with `Connection: close`). nullptr clears it.
    void watch_pending_input(bool (*pending)(const void*), const void* ctx) noexcept {
        pending_ = pending;
        pending_ctx_ = ctx;
    }

    // Replaces what a drain does to this connection (default: close it when idle). HTTP/2 sends
    // GOAWAY instead and closes once its streams are done. Runs at once when already draining.
    // An empty function restores the default.
    void on_drain(std::function<void()> f);

    // Shuts the client socket down both ways (pending reads see EOF, writes fail) — unless the
    // descriptor no longer names this connection's socket (closed, and the number reused).
    void close_client() noexcept;

private:
    friend class live_connections;
    bool idle() const noexcept { return busy_ == 0 && !(pending_ && pending_(pending_ctx_)); }
    void drain();
    void cut_now();

    live_connections* owner_;
    int fd_;
    ino_t inode_ = 0;  // of the socket behind fd_, to tell it from a later reuse of the number
    std::size_t busy_ = 0;
    bool cut_ = false;
    bool (*pending_)(const void*) = nullptr;
    const void* pending_ctx_ = nullptr;
    void (*hook_fn_)(void*) = nullptr;
    void* hook_ctx_ = nullptr;
    std::function<void()> drain_action_;
    live_connection* prev_ = nullptr;
    live_connection* next_ = nullptr;
};

// The live connections of one worker thread.
class live_connections {
public:
    live_connections() = default;
    live_connections(const live_connections&) = delete;
    live_connections& operator=(const live_connections&) = delete;

    // On the worker thread. Closes idle connections and asks the others to close after their
    // work; connections registered later are drained as they register.
    void begin_drain();
    // On the worker thread. Cuts every connection still open; returns how many.
    std::size_t cut_all();
    bool draining() const noexcept { return draining_; }
    // cut_all() ran: an exchange still running on this worker was cut.
    bool cut_done() const noexcept { return cut_done_; }

    // From any thread: how many connections are registered now.
    std::size_t open() const noexcept { return open_.load(std::memory_order_relaxed); }

private:
    friend class live_connection;
    void add(live_connection& c) noexcept;
    void remove(live_connection& c) noexcept;

    live_connection* head_ = nullptr;
    bool draining_ = false;
    bool cut_done_ = false;
    std::atomic<std::size_t> open_{0};
};

}  // namespace iron::net
