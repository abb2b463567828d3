#include "core/log.hpp"

#include "core/clock.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace iron::log {
namespace {

std::atomic<int> g_level{static_cast<int>(level::info)};

const char* level_name(level l) {
    switch (l) {
        case level::debug: return "DEBUG";
        case level::info: return "INFO";
        case level::warn: return "WARN";
        case level::error: return "ERROR";
    }
    return "INFO";
}


}  // namespace

bool parse_level(std::string_view text, level& out) {
    if (text == "debug") out = level::debug;
    else if (text == "info") out = level::info;
    else if (text == "warn") out = level::warn;
    else if (text == "error") out = level::error;
    else return false;
    return true;
}

void set_level(level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

void silence() { g_level.store(static_cast<int>(level::error) + 1, std::memory_order_relaxed); }

bool enabled(level l) { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

void write(level l, std::string_view msg, std::initializer_list<attr> attrs) {
    if (!enabled(l)) return;
    boost::json::object o;
    o["time"] = core::rfc3339_nano(std::chrono::system_clock::now());
    o["level"] = level_name(l);
    o["msg"] = msg;
    for (const auto& a : attrs) o[a.key] = a.value;
    std::string line = boost::json::serialize(o);
    line.push_back('\n');
    // One write() per line so concurrent threads never interleave within a line.
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n < 0) return;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace iron::log
