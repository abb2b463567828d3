#include "core/headers.hpp"

#include "core/header_name.hpp"

#include <algorithm>

namespace iron::core {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

void header_list::set(std::string name, std::string value) {
    // Keep the position of the first occurrence so header order on the wire stays stable.
    auto first = std::find_if(entries_.begin(), entries_.end(), [&](const entry& e) { return iequals(e.name, name); });
    if (first == entries_.end()) {
        entries_.push_back({std::move(name), std::move(value)});
        return;
    }
    std::size_t pos = static_cast<std::size_t>(first - entries_.begin());
    std::string_view key = name;
    entries_.erase(std::remove_if(entries_.begin() + static_cast<std::ptrdiff_t>(pos) + 1, entries_.end(),
                                  [&](const entry& e) { return iequals(e.name, key); }),
                   entries_.end());
    entries_[pos].name = std::move(name);
    entries_[pos].value = std::move(value);
}

void header_list::erase(std::string_view name) {
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [&](const entry& e) { return iequals(e.name, name); }),
                   entries_.end());
}

std::optional<std::string_view> header_list::get(std::string_view name) const {
    for (const auto& e : entries_) {
        if (iequals(e.name, name)) return std::string_view(e.value);
    }
    return std::nullopt;
}

namespace {

bool is_token_char(unsigned char c) {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

std::string canonical_header_name(std::string_view name) {
    for (unsigned char c : name)
        if (!is_token_char(c)) return std::string(name);
    std::string out(name);
    bool upper_next = true;
    for (char& c : out) {
        if (upper_next && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        else if (!upper_next && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        upper_next = c == '-';
    }
    return out;
}

}  // namespace iron::core
