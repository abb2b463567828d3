// The secrets transform's response redaction (see secrets_redact.hpp).
#include "transforms/secrets_redact.hpp"

#include <algorithm>
#include <memory>

#include "transforms/secrets.hpp"
#include "transforms/secrets_scan.hpp"

namespace iron::transforms::redact {
namespace {

using core::replacement_set;

bool any_location(const std::vector<std::string>& locations, std::string_view prefix) {
    return std::any_of(locations.begin(), locations.end(),
                       [&](const std::string& l) { return l.compare(0, prefix.size(), prefix) == 0; });
}

// Rewrites a header-like value (header, trailer, reason phrase) in place; returns the number of
// replacements. A placeholder is configuration text: should one hold CR, LF or NUL, the value
// becomes the marker rather than split the response head.
std::size_t redact_value(const replacement_set& set, std::string& value) {
    std::string out;
    const std::size_t n = set.replace(value, out);
    if (n == 0) return 0;
    value = scan::has_header_breaking_bytes(out) ? std::string(injected_marker) : std::move(out);
    return n;
}

// Attached to the exchange in the response phase; one per request, so no locking.
class redaction_filter final : public pipeline::response_filter {
public:
    redaction_filter(std::shared_ptr<const replacement_set> set, std::size_t in_head, bool body)
        : set_(set), body_(std::move(set)), in_head_(in_head), rewrites_body_(body) {}

    bool rewrites_body() const override { return rewrites_body_; }
    void feed(std::string_view in, std::string& out) override { body_.feed(in, out); }
    void finish(std::string& out) override { body_.finish(out); }
    void rewrite_text(std::string& text) override { in_text_ += redact_value(*set_, text); }

    void annotate(audit::trace& own_trace) const override {
        // A count, never a value. Keys in sorted order, as the rest of the trace.
        const std::size_t total = in_head_ + in_text_ + body_.replacements();
        if (total > 0) own_trace.annotations["redacted"] = total;
        if (!rewrites_body_) own_trace.annotations["redaction"] = "skipped (content-encoding)";
    }

private:
    std::shared_ptr<const replacement_set> set_;
    core::stream_replacer body_;
    std::size_t in_head_;
    std::size_t in_text_ = 0;
    bool rewrites_body_;
};

// Splits a comma-separated header value into trimmed tokens and tells whether any is not in `ok`.
bool has_other_token(std::string_view value, std::initializer_list<std::string_view> ok) {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        std::string_view tok = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
        while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
        if (tok.empty()) continue;
        if (std::none_of(ok.begin(), ok.end(), [&](std::string_view k) { return core::iequals(tok, k); })) return true;
    }
    return false;
}

}  // namespace

void recorder::swapped(const secret_entry& e, std::string_view secret, const std::vector<std::string>& locations) {
    rules_.push_back({std::string(secret), e.proxy_value});
    // What actually went into the URL is the escaped form (secrets_scan swap_in_query / path).
    if (any_location(locations, "query:"))
        rules_.push_back({scan::query_escape(secret), scan::query_escape(e.proxy_value)});
    if (any_location(locations, "path")) rules_.push_back({scan::path_escape(secret), scan::path_escape(e.proxy_value)});
}

void recorder::basic(std::string sent_base64, std::string received_base64) {
    rules_.push_back({std::move(sent_base64), std::move(received_base64)});
}

void recorder::injected(const secret_entry& e, std::string_view secret, std::string_view formatted) {
    const std::string marker(injected_marker);
    rules_.push_back({std::string(formatted), marker});
    rules_.push_back({std::string(secret), marker});
    if (!e.inject_query_param.empty()) rules_.push_back({scan::query_escape(formatted), marker});
}

void recorder::note_injected(pipeline::exchange& ex) const {
    for (const auto& r : rules_) ex.note_injected(r.from);
}

void recorder::publish(const void* owner, pipeline::exchange& ex) {
    if (rules_.empty()) return;
    auto set = std::make_shared<const replacement_set>(std::move(rules_));
    rules_.clear();
    if (!set->empty()) ex.redactions.push_back({owner, std::move(set)});
}

bool body_is_encoded(const core::header_list& response_headers) {
    for (const auto& h : response_headers.entries()) {
        if (core::iequals(h.name, "Content-Encoding") && has_other_token(h.value, {"identity"})) return true;
        if (core::iequals(h.name, "Transfer-Encoding") && has_other_token(h.value, {"identity", "chunked"})) return true;
    }
    return false;
}

void redact_response(const void* owner, pipeline::exchange& ex) {
    auto mine = std::find_if(ex.redactions.begin(), ex.redactions.end(),
                             [owner](const pipeline::response_redaction& r) { return r.owner == owner; });
    if (mine == ex.redactions.end()) return;
    std::size_t in_head = 0;
    for (auto& h : ex.response_headers.entries()) in_head += redact_value(*mine->values, h.value);
    const bool body = !body_is_encoded(ex.response_headers);
    ex.attach_response_filter(std::make_unique<redaction_filter>(mine->values, in_head, body));
}

}  // namespace iron::transforms::redact
