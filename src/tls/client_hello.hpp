#pragma once
// Reading the SNI from a TLS ClientHello without terminating TLS (sni-only mode).
// Pure and bounded: works on the bytes recorded so far and says whether it needs more.
#include <cstddef>
#include <string>
#include <string_view>

namespace iron::tls {

inline constexpr std::size_t max_client_hello_bytes = 16 * 1024;

struct client_hello_info {
    enum class status { need_more, ok, invalid } state = status::need_more;
    std::string sni;  // empty when the hello carries no server_name
};

// `bytes` starts at the first TLS record. Handles a ClientHello split across several handshake
// records. Anything that is not a well-formed ClientHello is `invalid`.
client_hello_info parse_client_hello(std::string_view bytes);

}  // namespace iron::tls
