// libFuzzer target: what a client sends on one HTTP/1.1 connection to the proxy (the plain
// listener, a tunnel's inner stream, or the decrypted MITM stream alike).
//
// Each request goes through the parser session.cpp uses (http/request_parser.hpp: same type, same
// header and body limits), fed the way Beast's async_read_header / async_read_some feed it (reads
// of a fuzzer-chosen size appended to one buffer), then through the HTTP/1.1 downstream's checks on the
// head (the framing and Host guard check_request_head, parse_request_target, check_target_and_host,
// the SNI comparison), the header rewriting done before forwarding (absolute-form authority as
// Host, hop-by-hop removal, WebSocket upgrade, header list round trip), and the body
// (Content-Length or chunked, with chunk extensions and trailers) is decoded into a relay buffer.
// Up to 8 pipelined requests per input, like serve_http's keep-alive loop.
//
// Input: byte 0 = read size (1..256), byte 1 = relay buffer size (1..256), then the client bytes.
//
// Checked beyond "no crash, no leak, no UB": a head that passes the checks has a port std::stoi
// accepts (exchange::upstream_for dials with it); the head the proxy writes upstream parses again with the
// same framing (chunked, or the same Content-Length), passes check_request_head itself and has
// exactly one Host, the host policy saw; a decoded body is never longer than what was sent, and
// exactly its Content-Length.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "core/host_glob.hpp"
#include "fuzz_support.hpp"
#include "http1_feed.hpp"
#include "http/messages.hpp"
#include "http/request_guard.hpp"
#include "http/request_parser.hpp"
#include "http/upstream_head.hpp"

namespace {

namespace bhttp = boost::beast::http;
using boost::asio::buffer;
using iron::http::request_parser;

using iron::fuzz::require;
using client_bytes = iron::fuzz::peer_bytes;

// The head as the proxy forwards it (http::prepare_upstream_head, the session's own rewrite),
// after the pipeline let it through unchanged: the header list round trip, no body buffered.
std::string outgoing_head(iron::http::proxy_request& req, const std::string& host,
                          const iron::http::request_target& target, bool chunked_in, bool had_length) {
    const bool websocket = iron::http::is_websocket_upgrade(req.base());
    iron::http::outgoing_framing framing;
    framing.chunked_in = chunked_in;
    framing.had_content_length = had_length;
    iron::http::prepare_upstream_head(req, iron::http::to_header_list(req.base()), host, target.origin_form(),
                                      framing, websocket);
    std::ostringstream out;
    out << req.base();
    return out.str();
}

// The forwarded head must parse again, with the framing the proxy meant, pass the proxy's own
// framing checks, and name exactly one host: the one policy saw.
void check_outgoing(const std::string& head, const std::string& host, bool chunked_in,
                    std::optional<std::uint64_t> length) {
    bhttp::request_parser<bhttp::empty_body> again;
    again.header_limit(iron::http::max_header_bytes * 2);  // the proxy may add a few fields
    again.body_limit(boost::none);                         // as the origin would: any length
    again.eager(false);
    boost::beast::error_code ec;
    const auto used = again.put(buffer(head), ec);
    require(!ec && again.is_header_done() && used == head.size());
    require(again.chunked() == chunked_in);
    require(!iron::http::check_request_head(iron::http::request_head_of(again.get().base(), 11)));
    int hosts = 0;
    for (const auto& f : again.get().base())
        if (f.name() == bhttp::field::host) ++hosts;
    require(hosts == 1 && again.get()[bhttp::field::host] == host);
    if (!chunked_in) {
        const auto again_length = again.content_length();
        require(again_length.has_value() == length.has_value());
        if (length) require(*again_length == *length);
    }
}

// One exchange; false when the connection would be closed.
bool serve_one(std::string& buf, client_bytes& client, std::size_t relay_size) {
    request_parser parser;
    iron::http::limit_client_request(parser);
    if (iron::fuzz::read_head(parser, buf, client) == iron::fuzz::fed::closed) return false;  // 400 or idle close

    // The HTTP/1.1 downstream's checks (http/downstream_h1.hpp identify and guard), in its order.
    auto& req = parser.get();
    const auto target = iron::http::parse_request_target(req.target());
    std::string host(req[bhttp::field::host]);
    if (target && !target->authority.empty()) host = target->authority;
    if (iron::http::check_request_head(iron::http::request_head_of(req.base(), req.version()))) return false;
    std::optional<std::string> decoded;
    if (iron::http::check_target_and_host(host, target, decoded)) return false;
    const auto hp = iron::core::split_host_port(host);
    // On TLS connections exchange::check_target compares the host with the SNI, both normalised.
    const bool matches_sni = iron::core::normalize_host(hp.host) == iron::core::normalize_host("allowed.test");
    (void)matches_sni;
    if (!hp.port.empty()) {
        try {
            const int port = std::stoi(hp.port);
            require(port > 0 && port <= 65535);
        } catch (...) {
            std::abort();  // a port the checks let through must not throw where exchange::upstream_for dials
        }
    }
    if (!target->authority.empty()) req.set(bhttp::field::host, target->authority);

    const bool chunked_in = parser.chunked();
    std::optional<std::uint64_t> length;
    if (const auto cl = parser.content_length()) length = *cl;
    const bool keep_alive = req.keep_alive();
    check_outgoing(outgoing_head(req, host, *target, chunked_in, length.has_value()), host, chunked_in, length);

    const std::size_t sent = buf.size() + client.rest.size();
    const long long body = iron::fuzz::relay_body(parser, buf, client, relay_size);
    if (body < 0) return false;
    require(static_cast<std::uint64_t>(body) <= sent);
    if (length) require(static_cast<std::uint64_t>(body) == *length);
    return keep_alive;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    client_bytes client{iron::fuzz::as_text(data + 2, size - 2), static_cast<std::size_t>(data[0]) + 1};
    const std::size_t relay_size = static_cast<std::size_t>(data[1]) + 1;
    std::string buf;
    for (int i = 0; i < 8; ++i)
        if (!serve_one(buf, client, relay_size)) break;
    return 0;
}
