#pragma once
// The one parser of a port written as text: a Host header's or a CONNECT target's port, a listen
// address's. Decimal digits only (no sign, space or 0x; leading zeros are fine, as Go's parsers
// take them), at most 65535. Port 0 is refused unless the caller asks for it: only a listen
// address may say 0 ("any free port"); a request can never name port 0.
#include <cstdint>
#include <optional>
#include <string_view>

namespace iron::core {

enum class port_zero { refused, allowed };

std::optional<std::uint16_t> parse_port(std::string_view text, port_zero zero = port_zero::refused);

}  // namespace iron::core
