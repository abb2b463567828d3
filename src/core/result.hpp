#pragma once
// result<T>: a value or an error message. Errors on the hot path are values, never exceptions.
#include <string>
#include <utility>
#include <variant>

namespace iron {

// Most failures map to one status whatever their cause. The kind says the cause where a caller
// answers differently (a dial that would reach the proxy itself is a 508) or tells the client
// more: the Proxy-Status field (exchange/proxy_status.hpp) names the cause in RFC 9209 terms.
enum class error_kind : unsigned char {
    other,
    loop_detected,        // the address is one of this proxy's own listeners
    address_denied,       // every address the name resolved to is in upstream_deny_cidrs
    dns_no_such_host,     // the resolver answered NXDOMAIN
    dns_no_address,       // the name exists but has no A/AAAA record (NOERROR, no data)
    dns_server_failure,   // the resolver answered SERVFAIL
    dns_refused,          // the resolver answered REFUSED
    dns_timeout,          // no answer in time
    dns_other,            // any other resolver failure
    connect_refused,      // the origin refused the TCP connection
    connect_timeout,      // the TCP connect or the TLS handshake did not finish in time
    unreachable,          // no route to the address
    tls_certificate,      // the origin's certificate did not verify
    tls_handshake,        // any other TLS handshake failure with the origin
    connection_closed,    // the origin closed or reset the connection before any response byte
    response_incomplete,  // the origin stopped part-way through its response head
    response_too_large,   // the origin's response head is over the size limit
    protocol_error,       // the origin's response is invalid or ambiguous (framing, stream reset)
    parent_auth,          // the parent proxy refused our credentials (407, SOCKS5 authentication)
    parent_refused,       // the parent proxy would not open the tunnel (its CONNECT status, SOCKS5 reply)
};

struct error {
    std::string message;
    error_kind kind = error_kind::other;
};

inline error make_error(std::string message) { return error{std::move(message)}; }
inline error make_error(error_kind kind, std::string message) { return error{std::move(message), kind}; }

template <class T>
class [[nodiscard]] result {
public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    result(error e) : v_(std::in_place_index<1>, std::move(e)) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const error& err() const { return std::get<1>(v_); }
    const std::string& message() const { return std::get<1>(v_).message; }

private:
    std::variant<T, error> v_;
};

// result<void>: success or an error message.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(error e) : e_(std::move(e)), ok_(false) {}
    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const error& err() const { return e_; }
    const std::string& message() const { return e_.message; }

private:
    error e_;
    bool ok_ = true;
};

inline result<void> ok() { return {}; }

}  // namespace iron
