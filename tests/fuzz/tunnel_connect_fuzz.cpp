// libFuzzer target: the tunnel listener's handshake (tunnel/tunnel.cpp): the first byte picks
// SOCKS5 or HTTP CONNECT (detect_handshake); a CONNECT head is read with the parser and limit the
// listener uses, then the method check, the authority-form target (parse_connect_target) and the
// header list the pipeline sees.
//
// Input: byte 0 = read size (1..256), then what the client sends.
//
// Checked: an accepted CONNECT target has a non-empty, already normalised policy host and an
// audited authority "host:port" (IPv6 bracketed) with a decimal port in 1..65535.
#include <cstdint>
#include <string>

#include <boost/beast/http.hpp>

#include "core/host_glob.hpp"
#include "fuzz_support.hpp"
#include "http/messages.hpp"
#include "socks5_handshake.hpp"
#include "tunnel/connect_target.hpp"

namespace {

namespace bhttp = boost::beast::http;
using iron::fuzz::require;

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

void check_target(const iron::tunnel::connect_target& t) {
    require(!t.host.empty());
    require(iron::core::normalize_host(t.host) == t.host);
    const auto colon = t.authority.rfind(':');
    require(colon != std::string::npos);
    const std::string_view port = std::string_view(t.authority).substr(colon + 1);
    require(all_digits(port));
    const long n = std::strtol(std::string(port).c_str(), nullptr, 10);
    require(n >= 1 && n <= 65535);
}

void run_connect(iron::fuzz::peer_bytes& client, std::string& buf) {
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.header_limit(iron::tunnel::max_connect_head_bytes);
    parser.eager(false);
    boost::beast::error_code ec;
    while (!parser.is_header_done()) {  // async_read_header
        if (!buf.empty()) {
            const auto used = parser.put(boost::asio::buffer(buf), ec);
            buf.erase(0, used);
            if (ec && ec != bhttp::error::need_more) return;  // 400 malformed tunnel request
            if (parser.is_header_done()) break;
        }
        if (!client.read(buf)) return;  // closed before a whole head
    }
    auto& req = parser.get();
    if (req.method() != bhttp::verb::connect) return;  // 405
    auto target = iron::tunnel::parse_connect_target(req.target());
    if (!target) return;  // 400
    check_target(*target);
    (void)iron::http::to_header_list(req.base());  // the headers transforms see
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    iron::fuzz::peer_bytes client{iron::fuzz::as_text(data + 1, size - 1), static_cast<std::size_t>(data[0]) + 1};
    std::string buf;
    client.read(buf);  // the listener waits for the first read, then looks at its first byte
    if (iron::tunnel::detect_handshake(static_cast<unsigned char>(buf[0])) == iron::tunnel::handshake_protocol::socks5)
        iron::fuzz::run_socks5_handshake(client, buf);
    else
        run_connect(client, buf);
    return 0;
}
