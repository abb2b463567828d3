#include "core/stream_replace.hpp"

#include <algorithm>

namespace iron::core {

replacement_set::replacement_set(std::vector<rule> rules) {
    for (auto& r : rules) {
        if (r.from.empty() || r.from == r.to) continue;
        const bool repeated = std::any_of(rules_.begin(), rules_.end(), [&](const rule& k) { return k.from == r.from; });
        if (!repeated) rules_.push_back(std::move(r));
    }
    std::stable_sort(rules_.begin(), rules_.end(),
                     [](const rule& a, const rule& b) { return a.from.size() > b.from.size(); });
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        starts_[static_cast<unsigned char>(rules_[i].from.front())] = true;
        max_from_ = std::max(max_from_, rules_[i].from.size());
    }
}

namespace {

// The scanning core shared by the whole-text and the streaming forms. `data` starts with
// `covered` bytes that lie inside an already emitted match: they are never emitted, but a match
// starting there and ending beyond them still is. Returns the first position that is not yet
// decided (data.size() when `final`); every byte before it is emitted, replaced or covered, and
// `covered` becomes the covered length counted from that position.
std::size_t scan(const replacement_set& set, const std::array<bool, 256>& starts, std::string_view data, bool final,
                 std::size_t& covered, std::string& out, std::size_t& count) {
    const std::size_t n = data.size();
    std::size_t done = covered;  // bytes before `done` are emitted, replaced or covered
    std::size_t p = 0;
    for (; p < n; ++p) {
        if (!starts[static_cast<unsigned char>(data[p])]) continue;
        const std::size_t rest = n - p;
        const replacement_set::rule* hit = nullptr;
        bool undecided = false;
        for (const auto& r : set.rules()) {  // longest first
            if (r.from.front() != data[p]) continue;
            if (r.from.size() <= rest) {
                if (data.compare(p, r.from.size(), r.from) == 0) {
                    hit = &r;
                    break;
                }
            } else if (!final && data.compare(p, rest, r.from, 0, rest) == 0) {
                undecided = true;  // a longer match may still complete: wait for more bytes
                break;
            }
        }
        if (undecided) break;
        if (hit == nullptr || p + hit->from.size() <= done) continue;  // none, or wholly covered
        if (p > done) out.append(data.substr(done, p - done));
        out += hit->to;
        ++count;
        done = p + hit->from.size();
    }
    if (p > done) {
        out.append(data.substr(done, p - done));
        done = p;
    }
    covered = done - p;
    return p;
}

}  // namespace

std::size_t replacement_set::replace(std::string_view in, std::string& out) const {
    std::size_t covered = 0, count = 0;
    scan(*this, starts_, in, true, covered, out, count);
    return count;
}

stream_replacer::stream_replacer(std::shared_ptr<const replacement_set> set) : set_(std::move(set)) {}

void stream_replacer::feed(std::string_view in, std::string& out) {
    if (held_.empty()) {
        // The common case: nothing pending, scan the caller's bytes without copying them.
        const std::size_t used = scan(*set_, set_->starts_, in, false, covered_, out, replacements_);
        held_.assign(in.substr(used));
        return;
    }
    held_.append(in);
    const std::size_t used = scan(*set_, set_->starts_, held_, false, covered_, out, replacements_);
    held_.erase(0, used);
}

void stream_replacer::finish(std::string& out) {
    scan(*set_, set_->starts_, held_, true, covered_, out, replacements_);
    held_.clear();
    covered_ = 0;
}

}  // namespace iron::core
