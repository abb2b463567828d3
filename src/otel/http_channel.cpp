// http/protobuf: POST <endpoint> with Content-Type application/x-protobuf over one kept-alive
// HTTP/1.1 connection (TLS for https), Beast on the exporter's thread.
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"
#include "otel/channel.hpp"
#include "otel/encode.hpp"
#include "tls/contexts.hpp"

namespace iron::otel {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using tls_socket = net::tls_stream<tcp::socket>;
using clock = std::chrono::steady_clock;

constexpr std::size_t max_response_bytes = 1 << 20;

// Retry-After in seconds (the HTTP-date form is not worth a date parser here: 0 = absent).
std::chrono::milliseconds retry_after_of(const http::response<http::string_body>& res) {
    auto it = res.find(http::field::retry_after);
    if (it == res.end()) return std::chrono::milliseconds(0);
    const std::string v(it->value());
    char* end = nullptr;
    const long s = std::strtol(v.c_str(), &end, 10);
    if (end == v.c_str() || s < 0 || s > 3600) return std::chrono::milliseconds(0);
    return std::chrono::seconds(s);
}

class http_channel final : public channel {
public:
    http_channel(asio::any_io_executor ex, const settings& s, std::shared_ptr<asio::ssl::context> tls)
        : ex_(std::move(ex)), s_(s), tls_ctx_(std::move(tls)) {}

    asio::awaitable<send_outcome> send(const std::string& body, clock::time_point deadline) override {
        http::request<http::string_body> req = make_request(body);
        // A kept-alive connection the collector closed while idle fails at once: that one is
        // retried on a fresh connection straight away, not after a backoff.
        const bool reused = connected();
        send_outcome out = co_await attempt(req, deadline);
        if (reused && io_failed_) out = co_await attempt(req, deadline);
        co_return out;
    }

private:
    asio::awaitable<send_outcome> attempt(http::request<http::string_body>& req, clock::time_point deadline) {
        io_failed_ = false;
        if (!connected()) {
            std::string why;
            const bool up = co_await connect(deadline, why);
            if (!up) co_return send_outcome{send_outcome::kind::retry, {}, why, 0};
        }
        send_outcome out;
        if (tls_) out = co_await exchange(*tls_, req, deadline);
        else out = co_await exchange(*plain_, req, deadline);
        co_return out;
    }

    bool connected() const { return tls_ ? tls_->lowest_layer().is_open() : plain_ && plain_->is_open(); }

    void drop_connection() {
        tls_.reset();
        plain_.reset();
    }

    http::request<http::string_body> make_request(const std::string& body) const {
        http::request<http::string_body> req{http::verb::post, s_.where.target, 11};
        req.set(http::field::host, s_.where.authority());
        req.set(http::field::user_agent, "iron-proxy/" IRON_VERSION);
        req.set(http::field::content_type, "application/x-protobuf");
        if (s_.gzip) req.set(http::field::content_encoding, "gzip");
        for (const auto& [k, v] : s_.headers) req.insert(k, v);
        req.keep_alive(true);
        req.body() = body;
        req.prepare_payload();
        return req;
    }

    asio::awaitable<bool> connect(clock::time_point deadline, std::string& why) {
        drop_connection();
        std::optional<tcp::socket> dialed = co_await dial_collector(ex_, s_.where, deadline, why);
        if (!dialed) co_return false;
        tcp::socket sock = std::move(*dialed);
        if (!s_.where.tls) {
            plain_ = std::make_unique<tcp::socket>(std::move(sock));
            co_return true;
        }
        auto stream = std::make_unique<tls_socket>(std::move(sock), *tls_ctx_);
        if (auto prepared = tls::prepare_client_ssl(stream->native_handle(), s_.where.host); !prepared) {
            why = "tls: " + prepared.message();
            co_return false;
        }
        net::watchdog tls_dog = net::closing_watchdog(*stream);
        tls_dog.expires_after(deadline - clock::now());
        auto [hec] = co_await stream->async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
        if (hec || tls_dog.fired()) {
            why = "tls handshake with " + s_.where.host + ": " + (tls_dog.fired() ? std::string("timeout") : hec.message());
            co_return false;
        }
        tls_ = std::move(stream);
        co_return true;
    }

    template <class Stream>
    asio::awaitable<send_outcome> exchange(Stream& stream, http::request<http::string_body>& req,
                                           clock::time_point deadline) {
        net::watchdog dog = net::closing_watchdog(stream);
        dog.expires_after(deadline - clock::now());
        auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
        if (wec) co_return io_failed("send", wec, dog.fired());
        boost::beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(max_response_bytes);
        auto [rec, rn] = co_await http::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
        if (rec) co_return io_failed("response", rec, dog.fired());
        dog.disarm();
        const auto& res = parser.get();
        if (!res.keep_alive()) drop_connection();
        const int status = static_cast<int>(res.result_int());
        if (status >= 200 && status < 300) {
            // A gzip-encoded response is rare (we send no Accept-Encoding) and only carries counts.
            const bool plain = res.find(http::field::content_encoding) == res.end();
            co_return send_outcome{send_outcome::kind::ok, {}, {}, plain ? rejected_in_response(res.body()) : 0};
        }
        const auto kind = retryable_http_status(status) ? send_outcome::kind::retry : send_outcome::kind::fail;
        co_return send_outcome{kind, retry_after_of(res), "HTTP " + std::to_string(status), 0};
    }

    send_outcome io_failed(const char* what, const boost::system::error_code& ec, bool timed_out) {
        drop_connection();
        io_failed_ = !timed_out;
        return send_outcome{send_outcome::kind::retry, {},
                            std::string(what) + ": " + (timed_out ? std::string("timeout") : ec.message()), 0};
    }

    asio::any_io_executor ex_;
    const settings& s_;
    std::shared_ptr<asio::ssl::context> tls_ctx_;
    std::unique_ptr<tcp::socket> plain_;
    std::unique_ptr<tls_socket> tls_;
    bool io_failed_ = false;  // the last attempt's connection broke (not a timeout, not a status)
};

}  // namespace

std::unique_ptr<channel> make_http_channel(asio::any_io_executor ex, const settings& s,
                                           std::shared_ptr<asio::ssl::context> tls) {
    return std::make_unique<http_channel>(std::move(ex), s, std::move(tls));
}

}  // namespace iron::otel
