#include "otel/channel.hpp"

#include <openssl/ssl.h>
#include <zlib.h>

#include "tls/contexts.hpp"

namespace iron::otel {

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
