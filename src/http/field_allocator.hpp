#pragma once
// The allocator of the proxy's HTTP/1.1 parsers' header fields.
//
// Beast allocates one block per header field (the element with its name and value inline) and
// frees them all when the message goes: 11 malloc/free pairs for a typical keep-alive request and
// its response, ~2,900 instructions. Those blocks are small and of few sizes, and the next exchange
// on the same worker thread needs the same ones again, so they are kept in per-thread free lists
// by 64-byte size class and handed out again (a bounded number per class; larger blocks and the
// overflow go to operator new/delete).
#include <cstddef>

#include <boost/beast/http/fields.hpp>

namespace iron::http {

namespace detail {
void* allocate_field_block(std::size_t bytes);
void release_field_block(void* block, std::size_t bytes) noexcept;
}  // namespace detail

// How many blocks the calling thread keeps for reuse (tests).
std::size_t field_blocks_on_this_thread();

// Stateless: every instance draws from the calling thread's lists, so all compare equal and a
// block may be freed by any of them (or on another thread: it then joins that thread's list).
template <class T>
struct field_allocator {
    using value_type = T;

    field_allocator() noexcept = default;
    template <class U>
    field_allocator(const field_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) { return static_cast<T*>(detail::allocate_field_block(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { detail::release_field_block(p, n * sizeof(T)); }

    template <class U>
    bool operator==(const field_allocator<U>&) const noexcept { return true; }
};

// The header container of every message the HTTP/1.1 proxy path parses.
using proxy_fields = boost::beast::http::basic_fields<field_allocator<char>>;

}  // namespace iron::http
