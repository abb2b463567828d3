#include "otel/channel.hpp"

#include <openssl/ssl.h>
#include <zlib.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/watchdog.hpp"
#include "tls/contexts.hpp"

namespace iron::otel {

boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> dial_collector(
    boost::asio::any_io_executor ex, const endpoint& where, std::chrono::steady_clock::time_point deadline,
    std::string& why) {
    namespace asio = boost::asio;
    using tcp = asio::ip::tcp;
    tcp::socket sock(ex);
    net::watchdog dog = net::closing_watchdog(sock);
    dog.expires_after(deadline - std::chrono::steady_clock::now());
    tcp::resolver resolver(ex);
    auto [rec, addrs] = co_await resolver.async_resolve(where.host, std::to_string(where.port),
                                                        asio::as_tuple(asio::use_awaitable));
    if (rec) {
        why = "lookup " + where.host + ": " + rec.message();
        co_return std::nullopt;
    }
    auto [cec, ep] = co_await asio::async_connect(sock, addrs, asio::as_tuple(asio::use_awaitable));
    if (cec || dog.fired()) {
        why = "connect " + where.authority() + ": " + (dog.fired() ? std::string("timeout") : cec.message());
        co_return std::nullopt;
    }
    dog.disarm();
    sock.set_option(tcp::no_delay(true));
    co_return std::optional<tcp::socket>(std::move(sock));
}

result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const settings& s) {
    auto ctx = tls::make_client_context(s.ca_file);
    if (!ctx) return make_error("OTEL_EXPORTER_OTLP_CERTIFICATE: " + ctx.message());
    SSL_CTX* raw = ctx->get();
    if (!s.client_cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(raw, s.client_cert_file.c_str()) != 1)
            return make_error("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: cannot load " + s.client_cert_file);
        if (SSL_CTX_use_PrivateKey_file(raw, s.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
            return make_error("OTEL_EXPORTER_OTLP_CLIENT_KEY: cannot load " + s.client_key_file);
        if (SSL_CTX_check_private_key(raw) != 1)
            return make_error("OTEL_EXPORTER_OTLP_CLIENT_KEY: does not match the client certificate");
    }
    return std::make_shared<boost::asio::ssl::context>(ctx->release());
}

std::string gzip(const std::string& in) {
    z_stream z{};
    // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
    std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return {};
    return out;
}

bool retryable_http_status(int status) { return status == 429 || status == 502 || status == 503 || status == 504; }

bool retryable_grpc_status(int status) {
    // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS
    switch (status) {
        case 1: case 4: case 8: case 10: case 11: case 14: case 15: return true;
        default: return false;
    }
}

}  // namespace iron::otel
