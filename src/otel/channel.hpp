#pragma once
// One way of delivering an ExportLogsServiceRequest to the collector: http/protobuf (a POST over
// HTTP/1.1, Beast) or grpc (a unary LogsService/Export call over HTTP/2, the proxy's nghttp2
// connection). A channel keeps its connection between exports and redials after a failure. It
// runs on the exporter's thread only. The collector is the operator's own destination, so it is
// dialed directly: the upstream deny list (which guards what clients of the proxy may reach) does
// not apply to it.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/result.hpp"
#include "otel/settings.hpp"

namespace iron::otel {

struct send_outcome {
    enum class kind { ok, retry, fail };
    kind what = kind::ok;
    std::chrono::milliseconds retry_after{0};  // the collector's Retry-After, if it sent one
    std::string detail;                       // why it failed (never a header value)
    long long rejected = 0;                   // partial success: records the collector refused
};

class channel {
public:
    virtual ~channel() = default;
    // Sends one encoded request (already gzipped when settings::gzip). Never throws; every wait is
    // bounded by `deadline`.
    virtual boost::asio::awaitable<send_outcome> send(const std::string& body,
                                                      std::chrono::steady_clock::time_point deadline) = 0;
};

// The TLS client context for an https endpoint: the system store plus OTEL_..._CERTIFICATE, and
// the client certificate and key when set. Errors name the variable.
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const settings& s);

std::unique_ptr<channel> make_http_channel(boost::asio::any_io_executor ex, const settings& s,
                                           std::shared_ptr<boost::asio::ssl::context> tls);
std::unique_ptr<channel> make_grpc_channel(boost::asio::any_io_executor ex, const settings& s,
                                           std::shared_ptr<boost::asio::ssl::context> tls);

// A TCP connection to the collector (resolved with the system resolver, Nagle off), or nothing with
// `why` saying what failed; the lookup and connect together end by `deadline`.
boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> dial_collector(
    boost::asio::any_io_executor ex, const endpoint& where, std::chrono::steady_clock::time_point deadline,
    std::string& why);

// gzip (RFC 1952) of `in`, for Content-Encoding / grpc-encoding: gzip.
std::string gzip(const std::string& in);

// The status classes the OTLP exporter spec calls retryable.
bool retryable_http_status(int status);
bool retryable_grpc_status(int status);

}  // namespace iron::otel
