#pragma once
// A private directory under /tmp for one test, removed with everything in it when the test ends.
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace iron::test {

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/iron-unit-test-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        if (!p) std::abort();
        path = p;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

}  // namespace iron::test
