#pragma once
// Where audit records go: stderr by default, or a file (created 0600, appended). Thread-safe;
// lines never interleave: each write() carries whole lines only, and for a pipe or terminal at most
// PIPE_BUF bytes, so lines of concurrent writers never mix. Audit records are not filtered by
// log.level (Go's are: at `warn` it drops every allowed request).
//
// Batching (issue #6: one write(2) per request was ~1/7 of the proxy's syscalls at c=32): on a
// thread that holds a batch_scope (every worker thread, for as long as its event loop runs), a
// record is appended to that thread's batch and written, together with the other records of the
// same event-loop turn, by a handler posted to the loop when the batch opened. So a record reaches
// the file at the end of the turn that produced it, without waiting for more traffic. A batch is
// also written when it would outgrow its limit, before a record for another sink joins it, on
// flush_thread_batch() (SIGHUP) and when the scope ends (shutdown: the loop has returned). On any
// other thread emit() writes at once, as before.
#include <cstddef>
#include <memory>
#include <string>

#include "audit/observer.hpp"
#include "audit/record.hpp"
#include "core/result.hpp"

namespace boost::asio {
class io_context;
}

namespace iron::audit {

class sink : public std::enable_shared_from_this<sink> {
public:
    // path empty => stderr. A file is opened O_APPEND|O_CREAT with mode 0600. `observer` (may be
    // null) sees every record emit() writes.
    static result<std::shared_ptr<sink>> open(const std::string& path,
                                              std::shared_ptr<record_observer> observer = nullptr);
    ~sink();
    sink(const sink&) = delete;
    sink& operator=(const sink&) = delete;

    void emit(const record& r);  // serialize + append to this thread's batch, or write now; never throws
    void emit_line(const std::string& json_line);

    // The largest write that keeps lines of concurrent writers apart (see the top of this file).
    std::size_t max_write() const noexcept { return max_write_; }
    // Writes whole lines with one write() (more only after a short write); never throws.
    void write_all(const char* p, std::size_t n);

private:
    sink(int fd, bool owned, std::size_t max_write, std::shared_ptr<record_observer> observer)
        : fd_(fd), owned_(owned), max_write_(max_write), observer_(std::move(observer)) {}
    int fd_;
    bool owned_;
    std::size_t max_write_;
    std::shared_ptr<record_observer> observer_;
};

// Turns batching on for the calling thread, which must be the one that runs `loop`, until the
// scope ends; the destructor writes what is still batched. One scope per thread at a time.
class batch_scope {
public:
    explicit batch_scope(boost::asio::io_context& loop);
    ~batch_scope();
    batch_scope(const batch_scope&) = delete;
    batch_scope& operator=(const batch_scope&) = delete;
};

// Writes the calling thread's batch now (no-op without one).
void flush_thread_batch() noexcept;

}  // namespace iron::audit
