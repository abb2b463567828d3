// libFuzzer target: the secrets scanner/replacer (transforms/secrets_scan.cpp), the streaming
// replacer of response redaction (core/stream_replace.cpp) and the `secrets` transform built on
// them, run the way the proxy runs it: a pipeline of annotate → body_capture → secrets (replace
// in headers, query, path and body; inject into a header and a query parameter; redact_responses)
// → header_allowlist, built from YAML once, over a request made from the input, then over a
// response that reflects the request as it went upstream.
//
// Input: byte 0 picks the mode, the rest are NUL-separated fields:
//   0      pure helpers: token, replacement, subject, key, value, formatter text;
//   1      stream replacer: piece size, then from/to pairs, the last field is the stream;
//   2..255 a request: (byte 0 - 2) & 3 picks its host, (byte 0 >> 2) + 1 is the response piece
//          size; fields: raw path, raw query, body, then header name/value pairs.
//
// Checked, pure helpers: base64 and both percent-escapes round-trip; swap_encoded counts what it
// replaces and a search never changes its input; set_query_param leaves exactly one parameter with
// the key, holding the value. Stream replacer: however the stream is cut, the output and count are
// the whole-text ones; it holds back less than the longest pattern; and no pattern survives when
// no replacement can form one. Request: a real secret never appears in the audit record (traces,
// annotations, body capture) nor in a synthetic response; the request that goes upstream has no
// CR/LF/NUL in a header value nor a byte outside visible ASCII in its path or query; the reflected
// response reaches the client without any real secret, in its headers or its body.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "audit/record.hpp"
#include "config/config.hpp"
#include "core/host_glob.hpp"
#include "core/stream_replace.hpp"
#include "core/log.hpp"
#include "fuzz_support.hpp"
#include "transforms/registry.hpp"
#include "transforms/secrets.hpp"
#include "transforms/secrets_scan.hpp"

namespace {

namespace scan = iron::transforms::scan;
using iron::fuzz::require;

// Every real secret below contains this, so a leak shows however the rest was escaped.
constexpr std::string_view k_marker = "ZQXJ7f3e9a1c";
// The real values of the pipeline below (what a reflecting origin would send back).
constexpr std::string_view k_secrets[] = {"ZQXJ7f3e9a1c/ s&=+%\"\\:@\u20ac?#", "ZQXJ7f3e9a1c-inject",
                                          "ZQXJ7f3e9a1c q&", "ZQXJ7f3e9a1c\r\nX-Evil: 1", "ZQXJ7f3e9a1c-required"};

// Secrets with bytes that need escaping in a path, a query and JSON; one with CR/LF, which must
// never be written into a header.
constexpr const char* k_pipeline_yaml = R"(transforms:
  - name: annotate
    config:
      annotations:
        - rules: [{host: "*"}]
          headers: [authorization, x-api-key, cookie]
  - name: body_capture
    config:
      rules: [{host: "*"}]
  - name: secrets
    config:
      redact_responses: true
      secrets:
        - source: {type: control_plane, value: "ZQXJ7f3e9a1c/ s&=+%\"\\:@\u20ac?#"}
          rules: [{host: replace.test}]
          replace: {proxy_value: ptok, match_query: true, match_path: true, match_body: true}
        - source: {type: control_plane, value: "ZQXJ7f3e9a1c-inject"}
          rules: [{host: inject.test}]
          inject: {header: Authorization, formatter: 'Basic {{ base64 "u:" .Value }}'}
        - source: {type: control_plane, value: "ZQXJ7f3e9a1c q&"}
          rules: [{host: inject.test}]
          inject: {query_param: key, formatter: "{{ .Value }}"}
        - source: {type: control_plane, value: "ZQXJ7f3e9a1c\r\nX-Evil: 1"}
          rules: [{host: crlf.test}]
          replace: {proxy_value: ptok, match_query: true, match_path: true}
        - source: {type: control_plane, value: "ZQXJ7f3e9a1c-required"}
          rules: [{host: "*"}]
          replace: {proxy_value: reqtok, match_headers: [x-required], require: false}
  - name: header_allowlist
    config:
      headers: [authorization, x-api-key, x-required, content-type, cookie, /^x-keep-/]
)";

const iron::pipeline::pipeline& the_pipeline() {
    static const std::shared_ptr<const iron::pipeline::pipeline> p = [] {
        YAML::Node root = YAML::Load(k_pipeline_yaml);
        std::vector<iron::config::transform_entry> entries;
        for (std::size_t i = 0; i < root["transforms"].size(); ++i) {
            const YAML::Node t = root["transforms"][i];
            entries.push_back({t["name"].as<std::string>(), t["config"], "fuzz.yaml"});
        }
        auto built = iron::transforms::build_pipeline(entries, "fuzz.yaml");
        if (!built) {
            std::fprintf(stderr, "secrets_scan_fuzz: %s\n", built.message().c_str());
            std::abort();
        }
        return *built;
    }();
    return *p;
}

bool visible_ascii(std::string_view s) {
    for (char c : s)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}

std::size_t count_occurrences(std::string_view s, std::string_view token) {
    std::size_t n = 0;
    for (std::size_t pos = 0; (pos = s.find(token, pos)) != std::string_view::npos; pos += token.size()) ++n;
    return n;
}

void fuzz_helpers(const std::vector<std::string_view>& f) {
    auto at = [&](std::size_t i) { return i < f.size() ? std::string(f[i]) : std::string(); };
    const std::string token = at(0), replacement = at(1), subject = at(2), key = at(3), value = at(4);

    require(scan::base64_decode(scan::base64_encode(subject)) == subject);
    (void)scan::base64_decode(subject);
    require(scan::percent_decode(scan::query_escape(subject), true) == subject);
    require(scan::percent_decode(scan::path_escape(subject), false) == subject);
    (void)scan::replace_all(subject, token, replacement);
    (void)scan::has_header_breaking_bytes(subject);

    for (bool plus : {false, true}) {
        std::string raw = subject;
        const auto found = scan::swap_encoded(raw, token, nullptr, plus);
        require(raw == subject);
        require(found == (token.empty() ? 0 : count_occurrences(scan::percent_decode(subject, plus), token)));
        const std::string encoded = scan::query_escape(replacement);
        require(scan::swap_encoded(raw, token, &encoded, plus) == found);
    }

    std::string query = subject;
    const auto keys = scan::swap_in_query(query, token, nullptr);
    require(query == subject);
    require(scan::swap_in_query(query, token, &replacement).size() == keys.size());

    std::string set = subject;
    scan::set_query_param(set, key, value);
    int with_key = 0;
    iron::fuzz::for_each_field(set, '&', [&](std::string_view c) {
        const auto eq = c.find('=');
        if (scan::percent_decode(c.substr(0, eq), true) != key) return;
        ++with_key;
        require(eq != std::string_view::npos && scan::percent_decode(c.substr(eq + 1), true) == value);
    });
    require(with_key == 1);

    for (bool authorization : {false, true}) {
        std::string v = subject;
        const bool found = scan::swap_in_header_value(authorization, v, token, nullptr);
        require(v == subject);
        require(scan::swap_in_header_value(authorization, v, token, &replacement) == found);
    }

    if (auto fmt = iron::transforms::formatter::parse(at(5))) (void)fmt->render(value);
}

void fuzz_stream_replacer(const std::vector<std::string_view>& f) {
    if (f.size() < 2) return;
    const std::size_t piece = f[0].empty() ? 1 : static_cast<unsigned char>(f[0][0]) % 64 + 1;
    std::vector<iron::core::replacement_set::rule> rules;
    for (std::size_t i = 1; i + 2 < f.size() && rules.size() < 8; i += 2)
        rules.push_back({std::string(f[i]), std::string(f[i + 1])});
    const std::string_view in = f.back();
    const auto set = std::make_shared<const iron::core::replacement_set>(rules);

    std::string whole;
    const std::size_t count = set->replace(in, whole);
    iron::core::stream_replacer r(set);
    std::string streamed;
    for (std::size_t at = 0; at < in.size(); at += piece) {
        r.feed(in.substr(at, piece), streamed);
        require(r.held() < std::max<std::size_t>(set->max_from(), 1));
    }
    r.finish(streamed);
    require(streamed == whole && r.replacements() == count);

    // The redaction contract, where it can be checked simply: when no replacement is empty or
    // shares a byte with any pattern, no pattern can be formed anew, so none may remain.
    bool clean = true;
    for (const auto& rule : set->rules())
        for (const auto& other : set->rules())
            clean = clean && !rule.to.empty() && rule.to.find_first_of(other.from) == std::string::npos;
    if (clean)
        for (const auto& rule : set->rules()) require(whole.find(rule.from) == std::string::npos);
}

// An origin that sends the request back: its header values as response headers, everything in the
// body. With redact_responses, none of the real values may reach the client.
void reflect_response(iron::pipeline::exchange& ex, iron::audit::record& rec, std::size_t piece) {
    std::string body = ex.raw_path + "?" + ex.raw_query + "\n" + ex.request_body.data;
    ex.status = 200;
    for (const auto& h : ex.request_headers.entries()) {
        body += h.name + ": " + h.value + "\n";
        ex.response_headers.add("X-Echo-" + h.name, h.value);
    }
    const auto decided = the_pipeline().run_response(ex, rec.response_transforms);
    if (decided.outcome.what != iron::pipeline::verdict::kind::next) return;
    std::string to_client;
    for (const auto& h : ex.response_headers.entries()) to_client += h.value + "\n";
    if (ex.response_filters.rewrites_body()) {
        for (std::size_t at = 0; at < body.size(); at += piece)
            ex.response_filters.feed(std::string_view(body).substr(at, piece), to_client);
        ex.response_filters.finish(to_client);
    } else {
        to_client += body;
    }
    ex.response_filters.annotate(rec.response_transforms);
    for (std::string_view secret : k_secrets) require(to_client.find(secret) == std::string::npos);
}

void fuzz_request(unsigned selector, const std::vector<std::string_view>& f) {
    static constexpr const char* hosts[] = {"replace.test", "inject.test", "crlf.test", "other.test"};
    iron::pipeline::exchange ex;
    ex.method = "POST";
    ex.host = hosts[(selector - 2) & 3];
    ex.policy_host = ex.host;
    ex.raw_path = f.size() > 0 ? std::string(f[0]) : "/";
    ex.raw_query = f.size() > 1 ? std::string(f[1]) : "";
    // What the HTTP layers hand over: a visible-ASCII target, header values without CR/LF/NUL.
    if (ex.raw_path.empty() || ex.raw_path[0] != '/' || !visible_ascii(ex.raw_path) || !visible_ascii(ex.raw_query))
        return;
    ex.path = scan::percent_decode(ex.raw_path, false);
    if (f.size() > 2) {
        ex.request_body.present = true;
        ex.request_body.data = std::string(f[2]);
    }
    ex.request_headers.add("Host", ex.host);
    for (std::size_t i = 3; i + 1 < f.size(); i += 2) {
        if (f[i].empty() || scan::has_header_breaking_bytes(f[i]) || scan::has_header_breaking_bytes(f[i + 1])) return;
        ex.request_headers.add(std::string(f[i]), std::string(f[i + 1]));
    }

    iron::audit::record rec;
    rec.host = ex.host;
    rec.path = ex.path;
    const auto decided = the_pipeline().run_request(ex, rec.request_transforms);
    rec.body_capture = ex.body_capture;
    rec.error = decided.outcome.error;

    std::string out = iron::audit::serialize(rec) + decided.outcome.body;
    for (const auto& h : decided.outcome.headers.entries()) out += h.name + h.value;
    require(out.find(k_marker) == std::string::npos);

    if (decided.outcome.what != iron::pipeline::verdict::kind::next) return;
    for (const auto& h : ex.request_headers.entries()) require(!scan::has_header_breaking_bytes(h.value));
    require(visible_ascii(ex.raw_path) && visible_ascii(ex.raw_query));

    reflect_response(ex, rec, (selector >> 2) + 1);
    require(iron::audit::serialize(rec).find(k_marker) == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    iron::log::set_level(iron::log::level::error);  // "annotate after secrets"-style warnings are not findings
    (void)the_pipeline();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view rest = iron::fuzz::as_text(data + 1, size - 1);
    std::vector<std::string_view> fields;
    iron::fuzz::for_each_field(rest, '\0', [&](std::string_view f) { fields.push_back(f); });
    if (data[0] == 0) {
        fuzz_helpers(fields);
    } else if (data[0] == 1) {
        fuzz_stream_replacer(fields);
    } else if (rest.find(k_marker) == std::string_view::npos) {  // the input itself must not carry the marker
        fuzz_request(data[0], fields);
    }
    return 0;
}
