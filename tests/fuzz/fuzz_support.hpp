#pragma once
// Small pieces shared by the fuzz targets (header-only; each target is one executable).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace iron::fuzz {

// A property the code under test must keep: a violation is a crash libFuzzer saves.
inline void require(bool ok) {
    if (!ok) std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// What a peer sends, handed out in reads of a fixed size (how the bytes are split across reads is
// part of the input: parsers must give the same answer however the bytes arrive).
struct peer_bytes {
    std::string_view rest;
    std::size_t read_size = 1;
    // Appends one read to `buf`; false at end of stream.
    bool read(std::string& buf) {
        if (rest.empty()) return false;
        const auto n = std::min(read_size, rest.size());
        buf.append(rest.substr(0, n));
        rest.remove_prefix(n);
        return true;
    }
};

// Splits the input into fields at a separator byte (for targets whose input is a list of strings).
template <class F>
void for_each_field(std::string_view in, char sep, F&& f) {
    for (;;) {
        const auto at = in.find(sep);
        f(in.substr(0, at));
        if (at == std::string_view::npos) return;
        in.remove_prefix(at + 1);
    }
}

}  // namespace iron::fuzz
