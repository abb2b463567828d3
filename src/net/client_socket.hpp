#pragma once
// The client side of every connection: a TCP socket plus bytes already read from it that must be
// replayed first (the protocol sniff byte, bytes a client pipelined behind its CONNECT head, which
// the Go proxy drops — so nothing the client sent is ever lost). Satisfies AsyncReadStream and
// AsyncWriteStream, so Beast and asio::ssl::stream layer on top of it.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

namespace iron::net {

class client_socket {
public:
    using socket_type = boost::asio::ip::tcp::socket;
    using executor_type = socket_type::executor_type;
    using lowest_layer_type = socket_type::lowest_layer_type;

    explicit client_socket(socket_type s) : sock_(std::move(s)) {}
    client_socket(client_socket&&) = default;
    client_socket& operator=(client_socket&&) = default;

    executor_type get_executor() { return sock_.get_executor(); }
    lowest_layer_type& lowest_layer() { return sock_.lowest_layer(); }
    const lowest_layer_type& lowest_layer() const { return sock_.lowest_layer(); }
    socket_type& socket() { return sock_; }

    // Bytes to hand out before reading from the socket again.
    void unread(std::string_view bytes) { prefix_.insert(prefix_off_, bytes); }
    std::size_t buffered() const { return prefix_.size() - prefix_off_; }
    // The next byte a read would return, if it is already buffered; -1 otherwise.
    int peek_buffered() const {
        return prefix_off_ < prefix_.size() ? static_cast<unsigned char>(prefix_[prefix_off_]) : -1;
    }

    // Takes up to `n` of the buffered bytes (synchronously); 0 when none are left. For layers that
    // read the socket themselves (net::tls_stream's BIO).
    std::size_t read_buffered(void* out, std::size_t n) {
        n = std::min(n, prefix_.size() - prefix_off_);
        if (n == 0) return 0;
        std::memcpy(out, prefix_.data() + prefix_off_, n);
        prefix_off_ += n;
        if (prefix_off_ == prefix_.size()) {
            prefix_.clear();
            prefix_.shrink_to_fit();
            prefix_off_ = 0;
        }
        return n;
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& bufs) {
                if (prefix_off_ == prefix_.size()) {
                    sock_.async_read_some(bufs, std::move(handler));
                    return;
                }
                std::size_t n = boost::asio::buffer_copy(
                    bufs, boost::asio::buffer(prefix_.data() + prefix_off_, prefix_.size() - prefix_off_));
                prefix_off_ += n;
                if (prefix_off_ == prefix_.size()) {
                    prefix_.clear();
                    prefix_.shrink_to_fit();
                    prefix_off_ = 0;
                }
                auto ex = boost::asio::get_associated_executor(handler, sock_.get_executor());
                boost::asio::post(boost::asio::bind_executor(
                    ex, [h = std::move(handler), n]() mutable { std::move(h)(boost::system::error_code{}, n); }));
            },
            token, buffers);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return sock_.async_write_some(buffers, std::forward<Token>(token));
    }

private:
    socket_type sock_;
    std::string prefix_;
    std::size_t prefix_off_ = 0;
};

}  // namespace iron::net
