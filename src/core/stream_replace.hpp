#pragma once
// Multi-pattern find-and-replace over a stream of pieces (pure: no I/O), for rewriting response
// bodies on the fly. A match split across pieces is still found; memory stays bounded: at most
// max_from() - 1 bytes are held back, and only while they could still be the start of a match,
// so a stream whose pieces end on bytes no pattern starts with (SSE events ending in "\n\n")
// is never delayed.
//
// Matching rules (the redaction contract: no byte of a pattern may get through):
//   * at each position the longest pattern that matches wins (a pattern that is a prefix of
//     another never splits the longer one);
//   * overlapping matches are all covered: after "abcd" matched in "abcdef", a pattern "cdef"
//     that starts inside it and ends beyond it is replaced too (its replacement follows), so the
//     output holds neither pattern's bytes.
// (secrets_scan's replace_all is single-pattern and needs the whole text, hence this class.)
#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace iron::core {

// The patterns, prepared once and shared (read-only) by every replacer using them.
class replacement_set {
public:
    struct rule {
        std::string from;
        std::string to;
    };
    // Rules with an empty `from`, or with `to == from`, are dropped; for a repeated `from` the
    // first rule wins.
    explicit replacement_set(std::vector<rule> rules);

    bool empty() const { return rules_.empty(); }
    std::size_t max_from() const { return max_from_; }
    const std::vector<rule>& rules() const { return rules_; }

    // Whole-text form: appends `in` with every match replaced to `out`; returns the number of
    // replacements.
    std::size_t replace(std::string_view in, std::string& out) const;

private:
    friend class stream_replacer;
    std::vector<rule> rules_;  // longest `from` first
    // Does any pattern start with this byte? False for almost every byte of a body: the fast path.
    std::array<bool, 256> starts_{};
    std::size_t max_from_ = 0;
};

class stream_replacer {
public:
    explicit stream_replacer(std::shared_ptr<const replacement_set> set);

    // Appends to `out` every byte that is now decided; keeps back a tail that might still begin
    // a match (at most max_from() - 1 bytes).
    void feed(std::string_view in, std::string& out);
    // End of the stream: the held-back tail is decided (no more bytes can complete a match).
    void finish(std::string& out);

    std::size_t replacements() const { return replacements_; }
    std::size_t held() const { return held_.size(); }

private:
    std::shared_ptr<const replacement_set> set_;
    std::string held_;
    std::size_t covered_ = 0;  // leading bytes of held_ already replaced (inside an emitted match)
    std::size_t replacements_ = 0;
};

}  // namespace iron::core
