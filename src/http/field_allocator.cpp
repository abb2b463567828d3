#include "http/field_allocator.hpp"

#include <array>
#include <new>

namespace iron::http {

namespace {

constexpr std::size_t class_bytes = 64;
constexpr std::size_t class_count = 8;        // blocks up to 512 bytes are recycled
constexpr std::size_t blocks_per_class = 128;  // at most 64 KiB cached per class and thread

struct free_block {
    free_block* next;
};

struct size_class {
    free_block* head = nullptr;
    std::size_t count = 0;
};

std::size_t class_of(std::size_t bytes) { return (bytes - 1) / class_bytes; }
std::size_t block_bytes(std::size_t cls) { return (cls + 1) * class_bytes; }

struct block_lists {
    std::array<size_class, class_count> classes{};
    ~block_lists() {
        for (std::size_t cls = 0; cls < class_count; ++cls) {
            while (auto* b = classes[cls].head) {
                classes[cls].head = b->next;
                ::operator delete(b, block_bytes(cls));
            }
        }
    }
};

// A plain flag outside the lists: still readable after their thread_local destructor ran (a
// message can be destroyed later in thread teardown).
thread_local bool lists_gone = false;

struct lists_holder {
    block_lists lists;
    ~lists_holder() { lists_gone = true; }
};

block_lists* this_thread_lists() {
    if (lists_gone) return nullptr;
    thread_local lists_holder holder;
    return &holder.lists;
}

}  // namespace

namespace detail {

void* allocate_field_block(std::size_t bytes) {
    if (bytes == 0 || bytes > class_bytes * class_count) return ::operator new(bytes);
    const std::size_t cls = class_of(bytes);
    if (auto* lists = this_thread_lists()) {
        auto& c = lists->classes[cls];
        if (auto* b = c.head) {
            c.head = b->next;
            --c.count;
            return b;
        }
    }
    return ::operator new(block_bytes(cls));
}

void release_field_block(void* block, std::size_t bytes) noexcept {
    if (bytes == 0 || bytes > class_bytes * class_count) return ::operator delete(block, bytes);
    const std::size_t cls = class_of(bytes);
    if (auto* lists = this_thread_lists()) {
        auto& c = lists->classes[cls];
        if (c.count < blocks_per_class) {
            c.head = new (block) free_block{c.head};
            ++c.count;
            return;
        }
    }
    ::operator delete(block, block_bytes(cls));
}

}  // namespace detail

std::size_t field_blocks_on_this_thread() {
    std::size_t n = 0;
    if (auto* lists = this_thread_lists())
        for (const auto& c : lists->classes) n += c.count;
    return n;
}

}  // namespace iron::http
