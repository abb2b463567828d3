#pragma once
// An ordered, case-insensitive header list. Transforms and the audit code work on this type so
// they stay pure and testable; the HTTP layer converts to and from Beast's fields at the edges.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iron::core {

bool iequals(std::string_view a, std::string_view b);

class header_list {
public:
    struct entry {
        std::string name;  // as received / as set (casing preserved on the wire)
        std::string value;
    };

    void add(std::string name, std::string value) { entries_.push_back({std::move(name), std::move(value)}); }
    void reserve(std::size_t n) { entries_.reserve(n); }
    // Replace every header with this name (case-insensitive) by one entry with the given casing.
    void set(std::string name, std::string value);
    void erase(std::string_view name);  // all entries with this name
    std::optional<std::string_view> get(std::string_view name) const;  // first value
    bool contains(std::string_view name) const { return get(name).has_value(); }

    std::vector<entry>& entries() { return entries_; }
    const std::vector<entry>& entries() const { return entries_; }
    bool empty() const { return entries_.empty(); }
    std::size_t size() const { return entries_.size(); }

private:
    std::vector<entry> entries_;
};

}  // namespace iron::core
