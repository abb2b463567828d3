#include "transforms/hmac_sign/hmac_sign.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/host_glob.hpp"
#include "secrets/await.hpp"
#include "transforms/json_rejection.hpp"
#include "transforms/secrets_scan.hpp"
#include "transforms/signable_body.hpp"

namespace iron::transforms::hmac_sign {
namespace {

using pipeline::verdict;

boost::json::value text(std::string_view s) { return boost::json::string_view(s.data(), s.size()); }

verdict refuse(pipeline::exchange& ex, int status, std::string_view reason) {
    return json_rejection(ex, status, "hmac_sign", reason);
}

// Credential values for one request, wiped when the request is done with them.
struct credential_values {
    std::vector<std::pair<std::string, std::string>> values;
    ~credential_values() {
        for (auto& [name, v] : values)
            if (!v.empty()) OPENSSL_cleanse(v.data(), v.size());
    }
    const std::string& get(std::string_view name) const {
        for (const auto& [n, v] : values)
            if (n == name) return v;
        static const std::string none;
        return none;
    }
};

// A header value must stay one header line: a credential holding CR or LF (or NUL) would split it.
bool header_safe(std::string_view v) { return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

const EVP_MD* md_of(digest d) {
    switch (d) {
        case digest::sha512: return EVP_sha512();
        case digest::sha1: return EVP_sha1();
        case digest::sha256: break;
    }
    return EVP_sha256();
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string format_timestamp(timestamp_format f, std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    const auto since = now.time_since_epoch();
    switch (f) {
        case timestamp_format::unix_millis: return std::to_string(duration_cast<milliseconds>(since).count());
        case timestamp_format::unix_nanos: return std::to_string(duration_cast<nanoseconds>(since).count());
        case timestamp_format::rfc3339: {
            const std::time_t t = system_clock::to_time_t(time_point_cast<seconds>(now));
            std::tm tm{};
            gmtime_r(&t, &tm);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
            return buf;
        }
        case timestamp_format::unix_seconds: break;
    }
    return std::to_string(duration_cast<seconds>(since).count());
}

result<std::string> decode_key(key_encoding e, std::string_view text) {
    if (e == key_encoding::raw) return std::string(text);
    if (e == key_encoding::base64) {
        auto out = scan::base64_decode(text);
        if (!out) return make_error("decoding base64 key: illegal base64 data");
        return std::move(*out);
    }
    if (text.size() % 2 != 0) return make_error("decoding hex key: odd length hex string");
    std::string out(text.size() / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(out.data(), out.size());
            return make_error("decoding hex key: invalid byte at offset " + std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
        }
        out[i] = static_cast<char>(hi * 16 + lo);
    }
    return out;
}

std::string sign(digest d, std::string_view key, std::string_view message, output_encoding out) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md_of(d), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
         message.size(), mac, &len);
    std::string_view raw(reinterpret_cast<const char*>(mac), len);
    if (out == output_encoding::base64) return scan::base64_encode(raw);
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : raw) {
        hex += digits[c >> 4];
        hex += digits[c & 15];
    }
    return hex;
}

hmac_sign_transform::hmac_sign_transform(hmac_settings s, std::vector<pipeline::host_rule> rules)
    : settings_(std::move(s)), rules_(std::move(rules)) {
    for (const auto& [name, src] : settings_.credentials) sources_.push_back(src.get());
}

bool hmac_sign_transform::awaits_request(const pipeline::exchange& ex) const {
    return secrets::any_pending(sources_) && rules_.matches_any(ex);
}

boost::asio::awaitable<pipeline::verdict> hmac_sign_transform::on_request_async(pipeline::exchange& ex) const {
    co_await secrets::await_fetched(sources_, secrets::first_fetch_wait);
    co_return on_request(ex);
}

pipeline::verdict hmac_sign_transform::on_request(pipeline::exchange& ex) const {
    if (!rules_.matches_any(ex)) return verdict::next();
    if (auto refused = check_signable_body(ex, settings_.allow_chunked_body, "hmac_sign")) return refuse(ex, refused->status, refused->reason);

    credential_values creds;
    for (const auto& [name, src] : settings_.credentials) {
        auto v = src->current();
        if (!v) {
            ex.note("credential", text(name));
            ex.note("error", text(v.message()));
            return refuse(ex, 502, "credential_unavailable");
        }
        creds.values.emplace_back(name, **v);
    }

    const std::string timestamp = format_timestamp(settings_.timestamp, std::chrono::system_clock::now());
    // The path and query exactly as they go upstream, so the origin verifies what it receives.
    const std::string& path = ex.raw_path.empty() ? ex.path : ex.raw_path;
    const std::string with_query = ex.raw_query.empty() ? path : path + "?" + ex.raw_query;
    const std::string host(core::split_host_port(ex.host).host);
    template_data msg_data;
    msg_data.fields = {{"Timestamp", timestamp}, {"Method", ex.method}, {"Path", path}, {"PathWithQuery", with_query},
                       {"Query", ex.raw_query}, {"Host", host}, {"Body", ex.request_body.data}};
    auto message = settings_.message.render(msg_data);
    if (!message) {
        ex.note("error", text(message.message()));
        return refuse(ex, 500, "message_template_failed");
    }

    auto key = decode_key(settings_.key, creds.get("secret"));
    if (!key) {
        ex.note("error", text(key.message()));
        return refuse(ex, 500, "key_decode_failed");
    }
    const std::string signature = sign(settings_.algorithm, *key, *message, settings_.output);
    OPENSSL_cleanse(key->data(), key->size());

    template_data hdr_data;
    hdr_data.fields = {{"Timestamp", timestamp}, {"Signature", signature}};
    hdr_data.credentials = &creds.values;
    std::vector<std::pair<std::string, std::string>> rendered;
    for (const auto& h : settings_.headers) {
        auto value = h.value.render(hdr_data);
        if (value && !header_safe(*value)) value = make_error("template: rendered value contains CR, LF or NUL");
        if (!value) {
            ex.note("header", text(h.name));
            ex.note("error", text(value.message()));
            return refuse(ex, 500, "header_template_failed");
        }
        rendered.emplace_back(h.name, std::move(*value));
    }
    // Only once every header rendered: a failed request leaves the headers as the client sent them.
    boost::json::array injected;
    for (auto& [name, value] : rendered) {
        injected.emplace_back("header:" + name);
        ex.note_injected(value);
        ex.request_headers.set(name, std::move(value));
    }
    ex.note("injected", std::move(injected));
    return verdict::next();
}

void hmac_sign_transform::refresh() const {
    for (const auto& [name, src] : settings_.credentials) src->reload();
}

}  // namespace iron::transforms::hmac_sign
