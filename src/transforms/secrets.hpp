#pragma once
// The `secrets` transform: the sandbox sends a placeholder (proxy token); the
// proxy swaps in the real credential at egress, only for the hosts the secret is bound to.
//
// One internal model (secret_entry) behind the three accepted config shapes:
//   * seed era:  {source: env, secrets: [{var, proxy_value, match_headers, match_body, require,
//                hosts: [{name} | {cidr}]}]}                   — the query string is always scanned
//   * current:   {secrets: [{source: {type, …}, rules: [...], replace: {proxy_value, match_headers,
//                match_query, match_path, match_body, require} | inject: {header | query_param,
//                formatter, require}}]}
//   * legacy:    current shape with proxy_value / match_headers / match_body / require at the entry
//                level instead of a replace block (no match_query / match_path).
// Parsing is strict: unknown keys are errors with file:line:col; `hosts:` in the
// current shape is an error pointing at `rules:` (Go silently ignores it, leaving the secret
// unbound); an entry bound to no host at all (empty rules / hosts) is an error rather than Go's
// silent "never applies".
//
// An unavailable secret (its source cannot be read): with `require` the request is rejected (403,
// reject_reason secret_unavailable). Otherwise, as in Go, the request goes on with the placeholder
// left in place and the trace annotated secret_unavailable: the placeholder is inert by design, so
// forwarding it leaks nothing, while a 403 would break workloads that only sometimes need the
// credential. `on_unavailable: reject` (transform level) keeps the stricter answer: 403 whenever
// the placeholder is present.
//
// Differences from the Go proxy, all deliberate:
//   * Query values are replaced in place (Go re-encodes the whole query with sorted keys):
//     parameter order and the encoding of every other byte are kept; the placeholder is found
//     whether the client percent-encoded it or not.
//     The raw path is also rewritten in place instead of being re-derived.
//   * `match_headers: none` disables header scanning (Go cannot); `[]` keeps meaning all headers.
//   * A body larger than proxy.max_request_body_bytes is never rewritten (the transform saw only a
//     prefix): the trace gets body_truncated: true and the HTTP layer forwards the original or
//     answers 413 per proxy.oversize_body (Go forwards the prefix it saw, cut short).
//   * A secret containing CR, LF or NUL is never written into a header (pipeline error, 502).
//   * `redact_responses: true` (transform level, off by default as in Go) maps every real value
//     swapped into a request back to its placeholder in that request's response
//     (secrets_redact.hpp).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "pipeline/rules.hpp"
#include "pipeline/transform.hpp"
#include "secrets/source.hpp"
#include "transforms/header_match.hpp"

namespace iron::transforms {

// The inject `formatter`: a tiny evaluator for the Go text/template forms the docs use — literal
// text, {{ .Value }}, and {{ base64 ARG… }} where each ARG is a string literal or .Value (base64 of
// the concatenation). `{{-` / `-}}` trim markers are honoured. Anything else is rejected at config
// time, so rendering cannot fail on the request path.
class formatter {
public:
    // Empty text = the raw value.
    static result<formatter> parse(std::string_view text);
    std::string render(std::string_view value) const;

private:
    struct arg {
        bool is_value = false;
        std::string text;
    };
    struct piece {
        enum class kind { text, value, base64 } what = kind::text;
        std::string text;
        std::vector<arg> args;
    };
    std::vector<piece> pieces_;
    bool identity_ = true;
};

// One secret binding.
struct secret_entry {
    std::shared_ptr<secrets::source> source;
    pipeline::rule_set rules;  // seed-era `hosts` become host-only rules
    bool require = false;

    enum class mode { replace, inject };
    mode what = mode::replace;

    // replace mode
    enum class header_scope { all, none, listed };
    std::string proxy_value;
    header_scope headers = header_scope::all;
    std::vector<header_pattern> match_headers;  // header_scope::listed
    bool match_query = false;
    bool match_path = false;
    bool match_body = false;

    // inject mode (exactly one of the two names is set)
    std::string inject_header;
    std::string inject_query_param;
    formatter format;
};

class secrets_transform final : public pipeline::transform {
public:
    explicit secrets_transform(std::vector<secret_entry> entries, bool redact_responses = false,
                               bool reject_unavailable = false)
        : entries_(std::move(entries)), redact_responses_(redact_responses), reject_unavailable_(reject_unavailable) {}

    // `config` is the transform's `config:` node (null = no secrets); `ctx` names it.
    static result<std::unique_ptr<secrets_transform>> from_config(const YAML::Node& config,
                                                                  const config::yaml_ctx& ctx);

    std::string_view name() const override { return "secrets"; }
    // Entries in order, each independently (as Go). Returns next, reject (403: require
    // without the token, or secret unavailable with require or on_unavailable: reject) or error (502: a value that cannot go in a header).
    // Annotations: swapped / injected [{secret, locations}], secret_unavailable [names],
    // rejected, reject_reason, body_truncated. Never a secret value.
    pipeline::verdict on_request(pipeline::exchange& ex) const override;
    // An entry whose rules match reads a remote store not fetched yet: the request waits for that
    // first fetch on the worker's event loop (never blocking the thread), then runs on_request.
    bool awaits_request(const pipeline::exchange& ex) const override;
    boost::asio::awaitable<pipeline::verdict> on_request_async(pipeline::exchange& ex) const override;
    // With redact_responses: every real value on_request put into this request is mapped back to
    // its placeholder in the response (secrets_redact.hpp). Annotations: redacted (a count) and
    // redaction "skipped (content-encoding)". Otherwise the response passes unmodified.
    pipeline::verdict on_response(pipeline::exchange& ex) const override;
    // True when an entry whose rules match has match_body.
    bool wants_request_body(const pipeline::exchange& ex) const override;
    // Re-reads every source (SIGHUP / reload; off the request path).
    void refresh() const override;
    // Swaps secrets; in the body too when an entry has match_body (then a body recorder placed
    // after it is refused: it would record the real secret).
    pipeline::ordering ordering_needs() const override;

    // Does any entry rewrite bodies?
    bool rewrites_body() const;
    const std::vector<secret_entry>& entries() const { return entries_; }
    bool redact_responses() const { return redact_responses_; }

private:
    std::vector<secret_entry> entries_;
    bool redact_responses_ = false;
    bool reject_unavailable_ = false;  // on_unavailable: reject
};

}  // namespace iron::transforms
