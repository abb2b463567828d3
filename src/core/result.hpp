#pragma once
// result<T>: a value or an error message. Errors on the hot path are values, never exceptions.
#include <string>
#include <utility>
#include <variant>

namespace iron {

// Most failures are told apart by nobody: they are logged and mapped to one status. The few a
// caller must answer differently carry a kind (e.g. a dial that would reach the proxy itself).
enum class error_kind : unsigned char { other, loop_detected };

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
