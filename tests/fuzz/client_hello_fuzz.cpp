// libFuzzer target: the SNI peek of sni-only mode (tls/client_hello.cpp), driven as
// record_client_hello (intercept.cpp) drives it: parse what was recorded so far, read more while
// the parser needs it, give up past max_client_hello_bytes.
//
// Input: bytes 0-1 = read size (1..65536, big-endian + 1), then what the client sends.
//
// Checked: the SNI is bytes the client sent; once the parse is decided on a prefix, the whole
// input gives the same answer (bytes after a complete ClientHello never change the verdict).
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "tls/client_hello.hpp"

using iron::fuzz::require;
using iron::tls::client_hello_info;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t read_size = ((static_cast<std::size_t>(data[0]) << 8) | data[1]) + 1;
    const std::string_view sent = iron::fuzz::as_text(data + 2, size - 2);
    iron::fuzz::peer_bytes client{sent, read_size};
    std::string recorded;
    client_hello_info parsed;
    for (;;) {
        parsed = iron::tls::parse_client_hello(recorded);
        if (parsed.state != client_hello_info::status::need_more) break;
        if (recorded.size() > iron::tls::max_client_hello_bytes || !client.read(recorded)) {
            parsed = {client_hello_info::status::invalid, ""};
            break;
        }
    }
    if (parsed.state != client_hello_info::status::ok) return 0;
    require(parsed.sni.size() <= recorded.size());
    if (!parsed.sni.empty()) require(recorded.find(parsed.sni) != std::string::npos);
    if (recorded.size() < sent.size()) {
        const auto whole = iron::tls::parse_client_hello(sent);
        require(whole.state == client_hello_info::status::ok || sent.size() > iron::tls::max_client_hello_bytes + 40);
        if (whole.state == client_hello_info::status::ok) require(whole.sni == parsed.sni);
    }
    return 0;
}
