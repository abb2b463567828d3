#include "audit/sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace iron::audit {

result<std::shared_ptr<sink>> sink::open(const std::string& path) {
    if (path.empty()) return std::shared_ptr<sink>(new sink(STDERR_FILENO, false));

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
    return std::shared_ptr<sink>(new sink(fd, true));
}

sink::~sink() {
    if (owned_ && fd_ >= 0) ::close(fd_);
}

void sink::emit(const record& r) {
    // Called from request completion paths, including error paths: an allocation failure while
    // serialising must not turn into a crash there, so it only costs this one record. The line is
    // built in a per-thread buffer (no allocation per record once it has grown).
    try {
        thread_local std::string line;
        line.clear();
        serialize_to(line, r);
        line.push_back('\n');
        write_all(line.data(), line.size());
        if (line.capacity() > 64 * 1024) std::string().swap(line);  // a huge record: don't keep it
    } catch (...) {
    }
}

void sink::emit_line(const std::string& json_line) try {
    std::string buf;
    buf.reserve(json_line.size() + 1);
    buf.append(json_line);
    buf.push_back('\n');
    write_all(buf.data(), buf.size());
} catch (...) {
}

void sink::write_all(const char* p, std::size_t left) {
    // One buffer, one write(): with O_APPEND (or a pipe under PIPE_BUF) concurrent records never
    // interleave, so no lock is needed. The loop only continues after a short write, EINTR or EAGAIN.
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
        return;  // the audit sink never throws; a broken stream drops the record
    }
}

}  // namespace iron::audit
