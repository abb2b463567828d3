#include "core/clock.hpp"

#include <cstdio>
#include <ctime>

namespace iron::core {

std::string rfc3339_nano(std::chrono::system_clock::time_point tp) {
    auto secs = std::chrono::floor<std::chrono::seconds>(tp);
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(tp - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(nanos));
    return buf;
}

}  // namespace iron::core
