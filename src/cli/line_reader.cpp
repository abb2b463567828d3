#include "cli/line_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

namespace iron::cli {
namespace {

// Splits what arrives into lines; a partial last line waits for the rest (or for flush()).
class line_splitter {
public:
    explicit line_splitter(const line_fn& on_line) : on_line_(on_line) {}
    void feed(const char* p, std::size_t n) {
        pending_.append(p, n);
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1)
            on_line_(pending_.substr(start, nl - start));
        pending_.erase(0, start);
    }
    void flush() {
        if (!pending_.empty()) on_line_(pending_);
        pending_.clear();
    }

private:
    const line_fn& on_line_;
    std::string pending_;
};

// Reads what `fd` has now; returns the bytes read (0 at its current end).
std::size_t drain(int fd, line_splitter& lines) {
    char buf[64 * 1024];
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return total;
        lines.feed(buf, static_cast<std::size_t>(n));
        total += static_cast<std::size_t>(n);
    }
}

// One followed file: its descriptor, identity and how far it was read.
struct followed {
    std::string path;
    int fd = -1;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t offset = 0;
    std::unique_ptr<line_splitter> lines;

    ~followed() {
        if (fd >= 0) ::close(fd);
    }

    void try_open() {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        struct stat st {};
        ::fstat(fd, &st);
        dev = st.st_dev;
        ino = st.st_ino;
        offset = 0;
    }

    void read_new() { offset += static_cast<off_t>(drain(fd, *lines)); }

    // One poll: open it if it appeared, read what was added, notice truncation and rotation.
    void poll() {
        if (fd < 0) {
            try_open();
            if (fd < 0) return;
        }
        read_new();
        struct stat now {};
        const bool exists = ::stat(path.c_str(), &now) == 0;
        if (exists && (now.st_dev != dev || now.st_ino != ino)) {  // rotated: finish the old file
            read_new();
            lines->flush();
            ::close(fd);
            fd = -1;
            try_open();
            if (fd >= 0) read_new();
            return;
        }
        struct stat mine {};
        if (::fstat(fd, &mine) == 0 && mine.st_size < offset) {  // truncated in place
            lines->flush();
            ::lseek(fd, 0, SEEK_SET);
            offset = 0;
            read_new();
        }
    }
};

}  // namespace

bool read_lines(const std::string& path, const line_fn& on_line, std::string& error) {
    const bool is_stdin = path == "-";
    const int fd = is_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = path + ": " + std::strerror(errno);
        return false;
    }
    line_splitter lines(on_line);
    drain(fd, lines);
    lines.flush();
    if (!is_stdin) ::close(fd);
    return true;
}

void follow_lines(const std::vector<std::string>& paths, const line_fn& on_line,
                  const std::function<bool()>& keep_going, int poll_ms) {
    std::vector<std::unique_ptr<followed>> files;
    for (const auto& p : paths) {
        if (p == "-") {
            std::string ignored;
            read_lines(p, on_line, ignored);
            continue;
        }
        auto f = std::make_unique<followed>();
        f->path = p;
        f->lines = std::make_unique<line_splitter>(on_line);
        files.push_back(std::move(f));
    }
    while (!files.empty() && keep_going()) {
        for (auto& f : files) f->poll();
        std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    }
}

}  // namespace iron::cli
