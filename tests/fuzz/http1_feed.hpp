#pragma once
// Feeding a Beast parser the way Beast's async_read_header / async_read_some do (read_some_op):
// put what is buffered, read more while the parser needs more, put_eof at the end of the stream.
// Shared by the HTTP/1.1 targets.
#include <string>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "fuzz_support.hpp"

namespace iron::fuzz {

enum class fed { ok, closed };

// One read_some: ok when the parser made progress (or its body buffer is full), closed on an
// error or at the end of the stream. `buf` is the connection's read buffer.
template <class Parser>
fed put_some(Parser& parser, std::string& buf, peer_bytes& peer) {
    boost::beast::error_code ec;
    for (;;) {
        if (!buf.empty()) {
            const auto used = parser.put(boost::asio::buffer(buf), ec);
            buf.erase(0, used);
            if (ec != boost::beast::http::error::need_more) break;
        }
        if (!peer.read(buf)) {
            if (!parser.got_some()) return fed::closed;
            ec = {};
            parser.put_eof(ec);
            break;
        }
    }
    if (ec == boost::beast::http::error::need_buffer) ec = {};
    return ec ? fed::closed : fed::ok;
}

// async_read_header: parse until the head is complete.
template <class Parser>
fed read_head(Parser& parser, std::string& buf, peer_bytes& peer) {
    parser.eager(false);
    while (!parser.is_header_done())
        if (put_some(parser, buf, peer) == fed::closed) return fed::closed;
    return fed::ok;
}

// Relays the body through a buffer of `relay_size` bytes (buffer_body), as relay_body does.
// Returns the number of body bytes decoded, or -1 when the stream ended or broke first.
template <class Parser>
long long relay_body(Parser& parser, std::string& buf, peer_bytes& peer, std::size_t relay_size) {
    std::string relay(relay_size, '\0');
    long long total = 0;
    while (!parser.is_done()) {
        parser.get().body().data = relay.data();
        parser.get().body().size = relay.size();
        if (put_some(parser, buf, peer) == fed::closed) return -1;
        total += static_cast<long long>(relay.size() - parser.get().body().size);
    }
    return total;
}

}  // namespace iron::fuzz
