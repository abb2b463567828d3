#pragma once
// The management API's runtime egress routes (README.md, "Runtime egress rules"):
//   GET    /v1/egress              mode and every rule, with ids and sources
//   POST   /v1/egress/rules        {"host": "GLOB"} or {"cidr": "CIDR"}
//   DELETE /v1/egress/rules/{id}   runtime rules only
//   PUT    /v1/egress/mode         {"mode": "warn"|"enforce"}
// Behind the same bearer token as /v1/reload (checked by the caller).
#include <optional>
#include <string_view>

#include "admin/server.hpp"
#include "egress/controller.hpp"

namespace iron::admin {

// The answer when `path` is one of the routes above; nullopt otherwise.
std::optional<response> egress_route(const request& req, std::string_view path, egress::controller& egress);

}  // namespace iron::admin
