#pragma once
// What the two admin listeners answer: metrics and the management API (README.md, "Metrics and
// management").
#include <functional>
#include <memory>
#include <string>

#include "admin/server.hpp"
#include "core/result.hpp"
#include "egress/controller.hpp"

namespace iron::admin {

// metrics.listen: /healthz → 200 "OK" (any method, as Go), /readyz → 200 "ready" or 503
// "not ready", /metrics → Prometheus text, anything else → Go's 404.
handler metrics_routes();

// Re-reads and applies the configuration. An error is a validation message (answered 422).
using reload_fn = std::function<result<void>()>;

// management.listen, standalone mode: Bearer `token` on every route (checked before the method),
// POST /v1/reload, the runtime egress routes (admin/egress_routes.hpp) when `egress` is given, and
// the managed-mode routes answering 404 with their standalone messages.
handler management_routes(std::string token, reload_fn reload, std::shared_ptr<egress::controller> egress = nullptr);

// "Authorization: Bearer <token>" exactly (case-sensitive scheme), compared in constant time.
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace iron::admin
