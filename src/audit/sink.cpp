#include "audit/sink.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace iron::audit {

namespace {

// A batch written to a regular file is at most this large (O_APPEND writes to a file do not
// interleave, whatever their size). Pipes and terminals get PIPE_BUF (atomic writes only).
constexpr std::size_t file_batch_bytes = 64 * 1024;

std::size_t max_write_for(int fd) {
    struct stat st{};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) return file_batch_bytes;
    return PIPE_BUF;
}

// The calling thread's batch: lines for one sink, waiting for the end of the event-loop turn.
struct thread_batch {
    boost::asio::io_context* loop = nullptr;  // set while a batch_scope is alive on this thread
    bool flush_posted = false;                // a flush is queued on `loop`
    std::shared_ptr<sink> target;             // the sink `lines` belong to (kept alive until written)
    std::string lines;
};
thread_local thread_batch batch;

void write_batch() noexcept {
    if (batch.target && !batch.lines.empty()) batch.target->write_all(batch.lines.data(), batch.lines.size());
    batch.lines.clear();
    if (batch.lines.capacity() > 2 * file_batch_bytes) std::string().swap(batch.lines);  // after a huge record
    batch.target.reset();
}

// Queues one flush at the end of the current turn of the thread's loop: handlers already queued
// (the other connections that were ready in this turn) run first and add their records.
void schedule_flush() {
    if (batch.flush_posted) return;
    boost::asio::post(*batch.loop, [] {
        batch.flush_posted = false;
        write_batch();
    });
    batch.flush_posted = true;
}

}  // namespace

result<std::shared_ptr<sink>> sink::open(const std::string& path, std::shared_ptr<record_observer> observer) {
    if (path.empty())
        return std::shared_ptr<sink>(new sink(STDERR_FILENO, false, max_write_for(STDERR_FILENO), std::move(observer)));

    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        return make_error("log.audit_path: cannot open " + path + ": " + std::strerror(e));
    }
    // Audit lines name hosts and paths of every request: a pre-existing file with a looser mode is
    // tightened. Only regular files: /dev/stderr, FIFOs and the like keep their mode.
    struct stat st{};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) != 0600) {
        if (::fchmod(fd, 0600) != 0) {
            int e = errno;
            ::close(fd);
            return make_error("log.audit_path: cannot open " + path + ": chmod 0600: " + std::strerror(e));
        }
    }
    return std::shared_ptr<sink>(new sink(fd, true, max_write_for(fd), std::move(observer)));
}

sink::~sink() {
    if (owned_ && fd_ >= 0) ::close(fd_);
}

namespace {

// Adds one line (made by `fill`, which appends it to a string) to the thread's batch for `s`.
template <class Fill>
void append_to_batch(sink& s, const Fill& fill) {
    if (batch.target.get() != &s) {
        write_batch();  // lines for another sink go first
        batch.target = s.shared_from_this();
    }
    const std::size_t before = batch.lines.size();
    try {
        fill(batch.lines);
        batch.lines.push_back('\n');
    } catch (...) {
        batch.lines.resize(before);  // no half line; the earlier lines stay batched
        throw;
    }
    if (batch.lines.size() > s.max_write() && before > 0) {
        // This line would make the batch too large for one write: the earlier lines go now.
        s.write_all(batch.lines.data(), before);
        batch.lines.erase(0, before);
    }
    if (batch.lines.size() >= s.max_write()) return write_batch();
    schedule_flush();
}

// Writes one line (made by `fill`) at once, from a per-thread buffer.
template <class Fill>
void write_now(sink& s, const Fill& fill) {
    thread_local std::string line;
    line.clear();
    fill(line);
    line.push_back('\n');
    s.write_all(line.data(), line.size());
    if (line.capacity() > 64 * 1024) std::string().swap(line);  // a huge record: don't keep it
}

template <class Fill>
void emit_with(sink& s, const Fill& fill) {
    // Called from request completion paths, including error paths: an allocation failure while
    // serialising must not turn into a crash there, so it only costs this one record.
    try {
        if (batch.loop) append_to_batch(s, fill);
        else write_now(s, fill);
    } catch (...) {
    }
}

}  // namespace

void sink::emit(const record& r) {
    // Every request ends here exactly once, so this is where its observer (the request metrics)
    // sees it.
    if (observer_) observer_->on_record(r);
    emit_with(*this, [&r](std::string& out) { serialize_to(out, r); });
}

void sink::emit_line(const std::string& json_line) {
    emit_with(*this, [&json_line](std::string& out) { out.append(json_line); });
}

void sink::write_all(const char* p, std::size_t left) {
    // One buffer of whole lines, one write(): with O_APPEND (or a pipe under PIPE_BUF) concurrent
    // writers never interleave, so no lock is needed. The loop only continues after a short write,
    // EINTR or EAGAIN.
    int stalls = 0;
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n > 0) {
            p += n;
            left -= static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && stalls++ < 10) {
            // stderr may be a non-blocking pipe inherited from the parent: wait briefly, then retry.
            pollfd pfd{fd_, POLLOUT, 0};
            ::poll(&pfd, 1, 100);
            continue;
        }
        return;  // the audit sink never throws; a broken stream drops what it was given
    }
}

batch_scope::batch_scope(boost::asio::io_context& loop) {
    batch.loop = &loop;
    batch.flush_posted = false;
}

batch_scope::~batch_scope() {
    write_batch();
    batch.loop = nullptr;
    batch.flush_posted = false;
}

void flush_thread_batch() noexcept { write_batch(); }

}  // namespace iron::audit
