#pragma once
// Relay buffers are lent for one exchange from a small per-thread stock: an idle keep-alive
// connection holds none (32 KiB each, zero-filled so resident), and busy connections do not
// allocate one per exchange. Each worker thread runs its own connections, so no locking.
#include <cstddef>
#include <optional>
#include <vector>

namespace iron::http {

// Bodies relayed to or from an HTTP/1.1 peer move in pieces of this size.
inline constexpr std::size_t relay_chunk_bytes = 64 * 1024;

class relay_loan {
public:
    relay_loan() = default;
    ~relay_loan() { give_back(); }
    relay_loan(const relay_loan&) = delete;
    relay_loan& operator=(const relay_loan&) = delete;

    // The lent buffer, borrowed on first use.
    std::vector<char>& get();
    // Back to the stock (or freed when the stock is full); the next get() borrows again.
    void give_back();

private:
    std::optional<std::vector<char>> buffer_;
};

}  // namespace iron::http
