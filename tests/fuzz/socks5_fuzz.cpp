// libFuzzer target: the SOCKS5 handshake on the tunnel listener (tunnel/socks5.cpp), driven as
// serve_socks5 drives it (socks5_handshake.hpp).
//
// Input: byte 0 = read size (1..256), then what the client sends, starting with its greeting
// (the 0x05 that made the listener choose SOCKS5 is the first byte of the greeting).
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "socks5_handshake.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    iron::fuzz::peer_bytes client{iron::fuzz::as_text(data + 1, size - 1), static_cast<std::size_t>(data[0]) + 1};
    std::string buf;
    iron::fuzz::run_socks5_handshake(client, buf);
    return 0;
}
