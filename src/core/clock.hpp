#pragma once
// Timestamps as they appear in every JSON line we write (daemon log and audit records).
#include <chrono>
#include <string>

namespace iron::core {

// RFC 3339 in UTC with nanoseconds: "2026-06-24T10:00:00.123456789Z".
std::string rfc3339_nano(std::chrono::system_clock::time_point tp);

}  // namespace iron::core
