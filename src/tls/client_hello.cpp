#include "tls/client_hello.hpp"

#include <cstdint>

namespace iron::tls {

namespace {

using status = client_hello_info::status;

// A bounds-checked cursor over a byte range; every read reports failure instead of overrunning.
class reader {
public:
    explicit reader(std::string_view b) : b_(b) {}
    bool u8(std::size_t& out) { return take(1, out); }
    bool u16(std::size_t& out) { return take(2, out); }
    bool u24(std::size_t& out) { return take(3, out); }
    bool skip(std::size_t n) {
        if (n > b_.size() - pos_) return false;
        pos_ += n;
        return true;
    }
    bool sub(std::size_t n, reader& out) {
        if (n > b_.size() - pos_) return false;
        out = reader(b_.substr(pos_, n));
        pos_ += n;
        return true;
    }
    std::size_t left() const { return b_.size() - pos_; }
    std::string_view rest() const { return b_.substr(pos_); }

private:
    bool take(std::size_t n, std::size_t& out) {
        if (n > b_.size() - pos_) return false;
        out = 0;
        for (std::size_t i = 0; i < n; ++i) out = (out << 8) | static_cast<std::uint8_t>(b_[pos_ + i]);
        pos_ += n;
        return true;
    }
    std::string_view b_;
    std::size_t pos_ = 0;
};

// Concatenates handshake-record payloads until the ClientHello message is complete.
status collect_handshake(std::string_view bytes, std::string& message) {
    reader r(bytes);
    while (r.left() > 0) {
        std::size_t type = 0, version = 0, len = 0;
        if (r.left() < 5) return status::need_more;
        r.u8(type);
        r.u16(version);
        r.u16(len);
        if (type != 22 || (version >> 8) != 3 || len == 0 || len > 16384) return status::invalid;
        if (r.left() < len) {
            message.append(r.rest());
            return status::need_more;
        }
        reader payload(bytes);
        r.sub(len, payload);
        message.append(payload.rest());
        if (message.size() >= 4) {
            reader h(message);
            std::size_t msg_type = 0, msg_len = 0;
            h.u8(msg_type);
            h.u24(msg_len);
            if (msg_type != 1 || msg_len > max_client_hello_bytes) return status::invalid;
            if (message.size() >= 4 + msg_len) {
                message.resize(4 + msg_len);
                return status::ok;
            }
        }
    }
    return status::need_more;
}

client_hello_info parse_extensions(reader ext) {
    client_hello_info out;
    while (ext.left() > 0) {
        std::size_t type = 0, len = 0;
        reader body(std::string_view{});
        if (!ext.u16(type) || !ext.u16(len) || !ext.sub(len, body)) return {status::invalid, ""};
        if (type != 0) continue;  // server_name
        std::size_t list_len = 0;
        reader list(std::string_view{});
        if (!body.u16(list_len) || !body.sub(list_len, list)) return {status::invalid, ""};
        while (list.left() > 0) {
            std::size_t name_type = 0, name_len = 0;
            reader name(std::string_view{});
            if (!list.u8(name_type) || !list.u16(name_len) || !list.sub(name_len, name)) return {status::invalid, ""};
            if (name_type == 0) {
                out.sni = std::string(name.rest());
                break;
            }
        }
    }
    out.state = status::ok;
    return out;
}

}  // namespace

client_hello_info parse_client_hello(std::string_view bytes) {
    if (bytes.size() > max_client_hello_bytes + 5 * 8) return {status::invalid, ""};
    std::string message;
    auto collected = collect_handshake(bytes, message);
    if (collected != status::ok) return {collected, ""};
    reader h(message);
    std::size_t skip = 0;
    h.skip(4);  // type + length, checked above
    std::size_t session_len = 0, suites_len = 0, methods_len = 0, ext_len = 0;
    if (!h.u16(skip) || !h.skip(32)) return {status::invalid, ""};  // client_version, random
    if (!h.u8(session_len) || !h.skip(session_len)) return {status::invalid, ""};
    if (!h.u16(suites_len) || !h.skip(suites_len)) return {status::invalid, ""};
    if (!h.u8(methods_len) || !h.skip(methods_len)) return {status::invalid, ""};
    if (h.left() == 0) return {status::ok, ""};  // no extensions at all: no SNI
    reader ext(std::string_view{});
    if (!h.u16(ext_len) || !h.sub(ext_len, ext)) return {status::invalid, ""};
    return parse_extensions(ext);
}

}  // namespace iron::tls
