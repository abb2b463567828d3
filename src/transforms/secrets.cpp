// The secrets transform's request path (replace and inject). Parsing lives in
// secrets_config.cpp, byte-level helpers in secrets_scan.cpp.
#include "transforms/secrets.hpp"

#include <algorithm>
#include <optional>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "config/yaml_util.hpp"
#include "core/header_name.hpp"
#include "core/headers.hpp"
#include "secrets/await.hpp"
#include "transforms/secrets_redact.hpp"
#include "transforms/secrets_scan.hpp"

namespace iron::transforms {
namespace {

namespace json = boost::json;
using pipeline::exchange;
using pipeline::verdict;

// What one replace pass found. With a null secret nothing is modified: the pass only tells
// whether the placeholder is present (used when the secret is unavailable).
struct replace_outcome {
    std::vector<std::string> locations;  // hits that were (or would be) swapped
    bool found = false;                  // token seen anywhere, incl. a truncated body prefix
    bool body_truncated = false;         // match_body but the body was only a prefix
    std::string error;                   // a value that cannot be written into a header
    redact::recorder* record = nullptr;  // redact_responses: collects Basic credentials rewritten
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// Swap in one header value; `secret` null = search only. Returns whether the token was there.
bool swap_value(std::string& value, std::string_view header_name, const secret_entry& e, const std::string* secret,
                redact::recorder* record) {
    const bool is_auth = core::iequals(header_name, "Authorization");
    if (secret == nullptr) {
        std::string copy = value;
        return scan::swap_in_header_value(is_auth, copy, e.proxy_value, nullptr);
    }
    if (record == nullptr || !is_auth) return scan::swap_in_header_value(is_auth, value, e.proxy_value, secret);
    // The credentials go out re-encoded: a reflection shows that base64, not the raw secret.
    constexpr std::string_view basic = "Basic ";
    const std::string before = value;
    const bool hit = scan::swap_in_header_value(is_auth, value, e.proxy_value, secret);
    if (hit && value != before && before.starts_with(basic) && value.starts_with(basic))
        record->basic(value.substr(basic.size()), before.substr(basic.size()));
    return hit;
}

void swap_all_headers(const secret_entry& e, exchange& ex, const std::string* secret, replace_outcome& out) {
    for (auto& h : ex.request_headers.entries()) {
        if (core::iequals(h.name, "Host")) continue;  // not a header in Go's model (req.Host)
        if (swap_value(h.value, h.name, e, secret, out.record)) out.locations.push_back("header:" + core::canonical_header_name(h.name));
    }
}

// Listed mode: each literal name / each header matching a regex is processed once, whatever
// patterns overlap. Literal hits are re-stored under the user's spelling (#127); regex hits keep
// the name they have. Locations: the user's spelling, or the canonical name for regex hits.
void swap_listed_headers(const secret_entry& e, exchange& ex, const std::string* secret, replace_outcome& out) {
    std::vector<std::string> processed;
    auto& entries = ex.request_headers.entries();
    auto swap_one = [&](const std::string& key, const std::string* spelling, const std::string& location) {
        std::string k = lower(key);
        if (std::find(processed.begin(), processed.end(), k) != processed.end()) return;
        processed.push_back(std::move(k));
        bool hit = false;
        for (auto& h : entries) {
            if (core::iequals(h.name, key) && swap_value(h.value, h.name, e, secret, out.record)) hit = true;
        }
        if (!hit) return;
        if (secret != nullptr && spelling != nullptr) {
            for (auto& h : entries) {
                if (core::iequals(h.name, key)) h.name = *spelling;
            }
        }
        out.locations.push_back("header:" + location);
    };
    for (const auto& p : e.match_headers) {
        if (!p.is_regex) {
            if (!core::iequals(p.literal, "Host")) swap_one(p.literal, &p.literal, p.literal);
            continue;
        }
        // Names are copied first: swap_one may rename entries while we walk them.
        std::vector<std::string> names;
        for (const auto& h : entries) {
            if (!core::iequals(h.name, "Host") && header_matches(p, h.name)) names.push_back(h.name);
        }
        for (const auto& n : names) swap_one(n, nullptr, core::canonical_header_name(n));
    }
}

replace_outcome run_replace(const secret_entry& e, exchange& ex, const std::string* secret,
                            redact::recorder* record = nullptr) {
    replace_outcome out;
    out.record = record;
    // Scanning order, as Go: headers → query → path → body.
    if (e.headers == secret_entry::header_scope::all) swap_all_headers(e, ex, secret, out);
    if (e.headers == secret_entry::header_scope::listed) swap_listed_headers(e, ex, secret, out);
    if (secret != nullptr && !out.locations.empty() && scan::has_header_breaking_bytes(*secret)) {
        // Only a non-Basic hit writes the raw value; re-check the written headers to be exact.
        for (const auto& h : ex.request_headers.entries()) {
            if (scan::has_header_breaking_bytes(h.value)) {
                out.error = "swapping secret " + config::go_quote(e.source->name()) +
                            ": value contains CR, LF or NUL and cannot be placed in a header";
                return out;
            }
        }
    }

    if (e.match_query) {
        for (auto& key : scan::swap_in_query(ex.raw_query, e.proxy_value, secret)) {
            out.locations.push_back("query:" + key);
        }
    }

    if (e.match_path) {
        std::size_t raw_hits = 0;
        if (!ex.raw_path.empty()) {
            const std::string encoded = secret != nullptr ? scan::path_escape(*secret) : std::string();
            raw_hits = scan::swap_encoded(ex.raw_path, e.proxy_value, secret != nullptr ? &encoded : nullptr, false);
        }
        const bool decoded_hit = ex.path.find(e.proxy_value) != std::string::npos;
        if (decoded_hit && secret != nullptr) ex.path = scan::replace_all(ex.path, e.proxy_value, *secret);
        if (raw_hits > 0 || decoded_hit) out.locations.push_back("path");
    }

    if (e.match_body && ex.request_body.present) {
        auto& body = ex.request_body;
        const bool hit = body.data.find(e.proxy_value) != std::string::npos;
        if (!body.complete) {
            // Only a prefix was buffered: rewriting it would forward a truncated or spliced body.
            out.body_truncated = true;
            out.found = out.found || hit;
        } else if (hit) {
            if (secret != nullptr) {
                body.data = scan::replace_all(body.data, e.proxy_value, *secret);
                body.modified = true;
            }
            out.locations.push_back("body");
        }
    }
    out.found = out.found || !out.locations.empty();
    return out;
}

json::object secret_record(const std::string& name, const std::vector<std::string>& locations) {
    json::array locs;
    for (const auto& l : locations) locs.emplace_back(json::string_view(l));
    json::object o;
    o["secret"] = name;
    o["locations"] = std::move(locs);
    return o;
}

json::array string_array(const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(json::string_view(s));
    return a;
}

}  // namespace

// --- formatter rendering ------------------------------------------------------------------------

std::string formatter::render(std::string_view value) const {
    if (identity_) return std::string(value);
    std::string out;
    for (const auto& p : pieces_) {
        switch (p.what) {
            case piece::kind::text: out += p.text; break;
            case piece::kind::value: out.append(value); break;
            case piece::kind::base64: {
                std::string joined;
                for (const auto& a : p.args) {
                    if (a.is_value) joined.append(value);
                    else joined += a.text;
                }
                out += scan::base64_encode(joined);
                break;
            }
        }
    }
    return out;
}

// --- request phase ------------------------------------------------------------------------------

pipeline::verdict secrets_transform::on_request(exchange& ex) const {
    json::array swapped, injected;
    std::vector<std::string> unavailable;
    bool body_truncated = false;
    // Which real values went into this request (never logged): for the exchange's
    // injected_secrets, and with redact_responses for the response's redaction.
    redact::recorder recorded;

    for (const auto& e : entries_) {
        if (!e.rules.matches_any(ex)) continue;
        const std::string& name = e.source->name();
        auto value = e.source->current();

        if (!value) {
            unavailable.push_back(name);
            // on_unavailable: reject never forwards the placeholder to a bound host we cannot swap
            // it for; by default (Go) it goes on as sent, inert.
            bool present = false;
            if (reject_unavailable_ && e.what == secret_entry::mode::replace) {
                auto probe = run_replace(e, ex, nullptr);
                present = probe.found;
                body_truncated = body_truncated || probe.body_truncated;
            }
            if (e.require || present) {
                ex.note("reject_reason", "secret_unavailable");
                ex.note("rejected", json::string_view(name));
                ex.note("secret_unavailable", string_array(unavailable));
                return verdict::reject(403);
            }
            continue;
        }
        const std::string& secret = **value;

        if (e.what == secret_entry::mode::inject) {
            std::string formatted = e.format.render(secret);
            recorded.injected(e, secret, formatted);
            std::string location;
            if (!e.inject_header.empty()) {
                if (scan::has_header_breaking_bytes(formatted)) {
                    return verdict::fail("injecting secret " + config::go_quote(name) +
                                         ": value contains CR, LF or NUL and cannot be placed in a header");
                }
                ex.request_headers.set(e.inject_header, std::move(formatted));  // replaces any casing
                location = "header:" + e.inject_header;
            } else {
                scan::set_query_param(ex.raw_query, e.inject_query_param, formatted);
                location = "query:" + e.inject_query_param;
            }
            injected.emplace_back(secret_record(name, {location}));
            continue;
        }

        auto outcome = run_replace(e, ex, &secret, &recorded);
        if (!outcome.error.empty()) return verdict::fail(outcome.error);
        body_truncated = body_truncated || outcome.body_truncated;
        if (!outcome.locations.empty()) {
            recorded.swapped(e, secret, outcome.locations);
            swapped.emplace_back(secret_record(name, outcome.locations));
        } else if (e.require && !outcome.found) {
            if (body_truncated) ex.note("body_truncated", true);
            ex.note("rejected", json::string_view(name));
            return verdict::reject(403);
        }
    }

    // Keys in sorted order, as Go's encoding/json writes the annotation map.
    if (body_truncated) ex.note("body_truncated", true);
    if (!injected.empty()) ex.note("injected", std::move(injected));
    if (!unavailable.empty()) ex.note("secret_unavailable", string_array(unavailable));
    if (!swapped.empty()) ex.note("swapped", std::move(swapped));
    recorded.note_injected(ex);
    if (redact_responses_) recorded.publish(this, ex);
    return verdict::next();
}

pipeline::verdict secrets_transform::on_response(exchange& ex) const {
    if (redact_responses_) redact::redact_response(this, ex);
    return verdict::next();
}

bool secrets_transform::wants_request_body(const exchange& ex) const {
    for (const auto& e : entries_) {
        if (e.what == secret_entry::mode::replace && e.match_body && e.rules.matches_any(ex)) return true;
    }
    return false;
}

namespace {

std::vector<const secrets::source*> pending_sources(const std::vector<secret_entry>& entries, const exchange& ex) {
    std::vector<const secrets::source*> out;
    for (const auto& e : entries)
        if (e.source->pending() && e.rules.matches_any(ex)) out.push_back(e.source.get());
    return out;
}

}  // namespace

// Asked of every request: no allocation, and the rules only for a source still pending.
bool secrets_transform::awaits_request(const exchange& ex) const {
    for (const auto& e : entries_)
        if (e.source->pending() && e.rules.matches_any(ex)) return true;
    return false;
}

boost::asio::awaitable<pipeline::verdict> secrets_transform::on_request_async(exchange& ex) const {
    std::vector<const secrets::source*> waiting = pending_sources(entries_, ex);
    co_await secrets::await_fetched(std::move(waiting), secrets::first_fetch_wait);
    co_return on_request(ex);
}

void secrets_transform::refresh() const {
    for (const auto& e : entries_) e.source->reload();
}

pipeline::ordering secrets_transform::ordering_needs() const {
    pipeline::ordering need;
    need.swaps_secrets = true;
    need.swaps_secrets_in_body = rewrites_body();
    return need;
}

bool secrets_transform::rewrites_body() const {
    return std::any_of(entries_.begin(), entries_.end(),
                       [](const secret_entry& e) { return e.what == secret_entry::mode::replace && e.match_body; });
}

}  // namespace iron::transforms
