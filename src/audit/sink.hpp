#pragma once
// Where audit records go: stderr by default, or a file (created 0600, appended). Thread-safe; each
// record is written with a single write() so concurrent records never interleave. Audit records are
// not filtered by log.level (§14 item 14).
#include <cstddef>
#include <memory>
#include <string>

#include "audit/record.hpp"
#include "core/result.hpp"

namespace iron::audit {

class sink {
public:
    // path empty => stderr. A file is opened O_APPEND|O_CREAT with mode 0600.
    static result<std::shared_ptr<sink>> open(const std::string& path);
    ~sink();
    sink(const sink&) = delete;
    sink& operator=(const sink&) = delete;

    void emit(const record& r);  // serialize + one write(); never throws
    void emit_line(const std::string& json_line);

private:
    explicit sink(int fd, bool owned) : fd_(fd), owned_(owned) {}
    void write_all(const char* p, std::size_t n);
    int fd_;
    bool owned_;
};

}  // namespace iron::audit
