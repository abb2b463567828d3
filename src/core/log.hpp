#pragma once
// Daemon log: one JSON object per line on stderr ({"time","level","msg",attrs...}), filtered by
// log.level. Audit records do not go through here (their own sink, audit/sink.hpp, ignores
// log.level).
#include <initializer_list>
#include <string_view>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/json/value.hpp>

namespace iron::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };

bool parse_level(std::string_view text, level& out);
void set_level(level l);
// No line at all, whatever the level (`-check` prints its one verdict line and nothing else).
void silence();
bool enabled(level l);

// One key/value attribute of a log line; converts from the usual C++ types.
struct attr {
    std::string_view key;
    boost::json::value value;
    attr(std::string_view k, std::string_view v) : key(k), value(v) {}
    attr(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
    attr(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
    attr(std::string_view k, boost::json::value v) : key(k), value(std::move(v)) {}
    template <class T>
        requires std::is_arithmetic_v<T>
    attr(std::string_view k, T v) : key(k), value(v) {}
};
void write(level l, std::string_view msg, std::initializer_list<attr> attrs = {});

inline void debug(std::string_view msg, std::initializer_list<attr> attrs = {}) { if (enabled(level::debug)) write(level::debug, msg, attrs); }
inline void info(std::string_view msg, std::initializer_list<attr> attrs = {}) { write(level::info, msg, attrs); }
inline void warn(std::string_view msg, std::initializer_list<attr> attrs = {}) { write(level::warn, msg, attrs); }
inline void error(std::string_view msg, std::initializer_list<attr> attrs = {}) { write(level::error, msg, attrs); }

}  // namespace iron::log
