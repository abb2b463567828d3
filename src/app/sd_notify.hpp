#pragma once
// systemd readiness for `Type=notify` units (packaging/iron-proxy.service): READY=1 once every
// listener accepts, STOPPING=1 when the drain begins. Written the way sd_notify(3) does it, as one
// datagram to the AF_UNIX socket that $NOTIFY_SOCKET names, so the binary does not link libsystemd.
#include <string_view>

namespace iron::app {

// Sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET. Does nothing when the variable is unset (not
// started by systemd); a socket that cannot be reached is logged as a warning and otherwise
// ignored: the proxy serves the same either way.
void notify_service_manager(std::string_view state);

}  // namespace iron::app
