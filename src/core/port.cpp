#include "core/port.hpp"

namespace iron::core {

std::optional<std::uint16_t> parse_port(std::string_view text, port_zero zero) {
    if (text.empty()) return std::nullopt;
    std::uint32_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
        if (value > 65535) return std::nullopt;  // checked per digit: no overflow on long input
    }
    if (value == 0 && zero == port_zero::refused) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

}  // namespace iron::core
