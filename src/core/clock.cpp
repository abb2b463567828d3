#include "core/clock.hpp"

#include <cstdio>
#include <ctime>

namespace iron::core {

std::string rfc3339_nano(std::chrono::system_clock::time_point tp) {
    // Calendar arithmetic instead of gmtime_r + snprintf (this runs for every audit record;
    // gmtime_r takes glibc's timezone lock). Same output: YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ.
    using namespace std::chrono;
    const auto day = floor<days>(tp);
    const year_month_day ymd{day};
    const auto ns = duration_cast<nanoseconds>(tp - day).count();
    long long secs = ns / 1'000'000'000;
    long long nanos = ns % 1'000'000'000;
    const int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) {
        std::time_t t = system_clock::to_time_t(floor<seconds>(tp));
        std::tm tm{};
        gmtime_r(&t, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos);
        return buf;
    }
    char buf[30];
    auto put = [&buf](int pos, long long v, int width) {
        for (int i = width - 1; i >= 0; --i) {
            buf[pos + i] = static_cast<char>('0' + v % 10);
            v /= 10;
        }
    };
    put(0, year, 4);
    buf[4] = '-';
    put(5, static_cast<unsigned>(ymd.month()), 2);
    buf[7] = '-';
    put(8, static_cast<unsigned>(ymd.day()), 2);
    buf[10] = 'T';
    put(11, secs / 3600, 2);
    buf[13] = ':';
    put(14, secs / 60 % 60, 2);
    buf[16] = ':';
    put(17, secs % 60, 2);
    buf[19] = '.';
    put(20, nanos, 9);
    buf[29] = 'Z';
    return std::string(buf, sizeof buf);
}

}  // namespace iron::core
