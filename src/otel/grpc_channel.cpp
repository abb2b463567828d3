// grpc: the unary call LogsService/Export over HTTP/2 (h2c for http://, TLS with ALPN h2 for
// https://), on the proxy's own nghttp2 connection class rather than libgrpc++: one unary call
// needs a HEADERS frame, one length-prefixed DATA message and the grpc-status trailer, which
// h2::connection already speaks (flow control, GOAWAY, resets); libgrpc++ would add ~10 MiB of
// shared libraries, its own threads and its own TLS stack to the process for that.
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "h2/connection.hpp"
#include "h2/transport.hpp"
#include "net/tls_stream.hpp"
#include "net/watchdog.hpp"
#include "otel/channel.hpp"
#include "otel/encode.hpp"
#include "tls/contexts.hpp"

namespace iron::otel {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using tls_socket = net::tls_stream<tcp::socket>;
using clock = std::chrono::steady_clock;

constexpr auto idle_close = std::chrono::seconds(60);  // an idle connection to the collector is closed

// The 5-byte gRPC message prefix (compressed flag, big-endian length) and the message.
std::string grpc_frame(const std::string& message, bool compressed) {
    std::string out;
    out.reserve(message.size() + 5);
    out.push_back(compressed ? 1 : 0);
    const auto n = static_cast<std::uint32_t>(message.size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
    out.append(message);
    return out;
}

// The unframed message of a response body (the first one; compressed responses are not asked for).
std::string grpc_unframe(const std::string& body) {
    if (body.size() < 5 || body[0] != 0) return {};
    std::uint32_t n = 0;
    for (int i = 1; i <= 4; ++i) n = (n << 8) | static_cast<unsigned char>(body[i]);
    if (body.size() - 5 < n) return {};
    return body.substr(5, n);
}

asio::awaitable<void> run_connection(std::shared_ptr<h2::connection> c) { co_await c->run(idle_close); }

class grpc_channel final : public channel {
public:
    grpc_channel(asio::any_io_executor ex, const settings& s, std::shared_ptr<asio::ssl::context> tls)
        : ex_(std::move(ex)), s_(s), tls_ctx_(std::move(tls)) {}
    ~grpc_channel() override { close_connection(); }

    asio::awaitable<send_outcome> send(const std::string& body, clock::time_point deadline) override {
        if (!conn_ || !conn_->usable()) {
            close_connection();
            std::string why;
            const bool up = co_await connect(deadline, why);
            if (!up) co_return send_outcome{send_outcome::kind::retry, {}, why, 0};
        }
        std::string error;
        auto st = conn_->submit_request(request_head(deadline), true, error);
        if (!st) {
            close_connection();
            co_return send_outcome{send_outcome::kind::retry, {}, error, 0};
        }
        // At the deadline the whole connection goes: a collector that stopped reading would keep
        // a reset stream open as long as it keeps the connection.
        // The handler may already be queued when the call ends: `phase` tells it the call is over
        // (then neither this channel nor the frame is touched).
        enum { pending, timed_out, over };
        auto phase = std::make_shared<int>(pending);
        asio::steady_timer timer(ex_, deadline);
        timer.async_wait([this, phase](const boost::system::error_code& ec) {
            if (ec || *phase != pending) return;
            *phase = timed_out;
            close_connection();
        });
        send_outcome out = co_await call(*st, grpc_frame(body, s_.gzip));
        if (*phase == timed_out) out = send_outcome{send_outcome::kind::retry, {}, "grpc: timeout", 0};
        *phase = over;
        timer.cancel();
        co_return out;
    }

private:
    h2::header_block request_head(clock::time_point deadline) const {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        h2::header_block h{{":method", "POST"},
                           {":scheme", s_.where.tls ? "https" : "http"},
                           {":path", s_.where.target},
                           {":authority", s_.where.authority()},
                           {"content-type", "application/grpc"},
                           {"te", "trailers"},
                           {"user-agent", "iron-proxy/" IRON_VERSION},
                           {"grpc-timeout", std::to_string(std::max<long long>(left.count(), 1)) + "m"}};
        if (s_.gzip) h.push_back({"grpc-encoding", "gzip"});
        for (const auto& [k, v] : s_.headers) {
            std::string name = k;
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            h.push_back({std::move(name), v});
        }
        return h;
    }

    asio::awaitable<send_outcome> call(h2::stream& st, std::string frame) {
        const bool sent = co_await st.write(frame);
        if (sent) st.finish();
        const bool got_head = co_await st.wait_headers();
        if (!got_head) co_return failed("grpc: stream closed before a response");
        std::string body, piece;
        for (int pieces = 0; pieces < 1024; ++pieces) {
            const auto status = co_await st.read(piece);
            if (status == h2::stream::read_status::reset) co_return failed("grpc: stream reset");
            if (status == h2::stream::read_status::end) break;
            if (body.size() < (1u << 20)) body.append(piece);
        }
        co_return outcome_of(st, body);
    }

    send_outcome outcome_of(const h2::stream& st, const std::string& body) const {
        const std::string* http_status = h2::find_header(st.headers(), ":status");
        const int code = http_status ? std::atoi(http_status->c_str()) : 0;
        if (code != 200) {
            const auto kind = retryable_http_status(code) ? send_outcome::kind::retry : send_outcome::kind::fail;
            return send_outcome{kind, {}, "grpc: HTTP " + std::to_string(code), 0};
        }
        // Trailers-only responses carry grpc-status in the headers.
        const std::string* grpc_status = h2::find_header(st.trailers(), "grpc-status");
        if (!grpc_status) grpc_status = h2::find_header(st.headers(), "grpc-status");
        if (!grpc_status) return send_outcome{send_outcome::kind::retry, {}, "grpc: no grpc-status", 0};
        const int g = std::atoi(grpc_status->c_str());
        if (g == 0) return send_outcome{send_outcome::kind::ok, {}, {}, rejected_in_response(grpc_unframe(body))};
        const auto kind = retryable_grpc_status(g) ? send_outcome::kind::retry : send_outcome::kind::fail;
        return send_outcome{kind, {}, "grpc-status " + std::to_string(g), 0};
    }

    send_outcome failed(std::string why) {
        close_connection();
        return send_outcome{send_outcome::kind::retry, {}, std::move(why), 0};
    }

    void close_connection() {
        if (io_) io_->close();  // the connection's loops end and its streams close
        io_ = nullptr;
        conn_.reset();
    }

    asio::awaitable<bool> connect(clock::time_point deadline, std::string& why) {
        std::optional<tcp::socket> dialed = co_await dial_collector(ex_, s_.where, deadline, why);
        if (!dialed) co_return false;
        tcp::socket sock = std::move(*dialed);
        std::unique_ptr<h2::transport> io;
        if (!s_.where.tls) {
            io = std::make_unique<h2::stream_transport<tcp::socket>>(std::move(sock));
        } else {
            tls_socket stream(std::move(sock), *tls_ctx_);
            const bool ready = co_await handshake(stream, deadline, why);
            if (!ready) co_return false;
            io = std::make_unique<h2::stream_transport<tls_socket>>(std::move(stream));
        }
        io_ = io.get();
        conn_ = std::make_shared<h2::connection>(h2::connection::role::client, ex_, std::move(io), h2::settings{});
        asio::co_spawn(ex_, run_connection(conn_), asio::detached);
        co_return true;
    }

    asio::awaitable<bool> handshake(tls_socket& stream, clock::time_point deadline, std::string& why) {
        if (auto prepared = tls::prepare_client_ssl(stream.native_handle(), s_.where.host); !prepared) {
            why = "tls: " + prepared.message();
            co_return false;
        }
        static constexpr unsigned char h2_only[] = "\x02h2";
        SSL_set_alpn_protos(stream.native_handle(), h2_only, sizeof h2_only - 1);
        net::watchdog dog = net::closing_watchdog(stream);
        dog.expires_after(deadline - clock::now());
        auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
        if (ec || dog.fired()) {
            why = "tls handshake with " + s_.where.host + ": " + (dog.fired() ? std::string("timeout") : ec.message());
            co_return false;
        }
        const unsigned char* chosen = nullptr;
        unsigned int chosen_len = 0;
        SSL_get0_alpn_selected(stream.native_handle(), &chosen, &chosen_len);
        if (chosen_len != 2 || chosen[0] != 'h' || chosen[1] != '2') {
            why = "tls handshake with " + s_.where.host + ": the collector did not agree to HTTP/2 (ALPN)";
            co_return false;
        }
        co_return true;
    }

    asio::any_io_executor ex_;
    const settings& s_;
    std::shared_ptr<asio::ssl::context> tls_ctx_;
    std::shared_ptr<h2::connection> conn_;
    h2::transport* io_ = nullptr;  // conn_'s transport (owned by it): closed to end it at once
};

}  // namespace

std::unique_ptr<channel> make_grpc_channel(asio::any_io_executor ex, const settings& s,
                                           std::shared_ptr<asio::ssl::context> tls) {
    return std::make_unique<grpc_channel>(std::move(ex), s, std::move(tls));
}

}  // namespace iron::otel
