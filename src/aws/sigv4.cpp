#include "aws/sigv4.hpp"
#include "core/percent.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace iron::aws {
namespace {

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

std::string hmac_raw(std::string_view key, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), mac, &len);
    return std::string(reinterpret_cast<const char*>(mac), len);
}



// Dot segments resolved and empty segments dropped (AWS services other than S3 want both).
std::string normalize_path(std::string_view path) {
    if (path.empty()) return "/";
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        std::string_view seg = path.substr(start, slash - start);
        if (seg == "..") {
            if (!out.empty()) out.pop_back();
        } else if (!seg.empty() && seg != ".") {
            out.push_back(seg);
        }
        start = slash + 1;
    }
    std::string joined = path.front() == '/' ? "/" : "";
    for (std::size_t i = 0; i < out.size(); ++i) joined += (i ? "/" : "") + std::string(out[i]);
    if (path.back() == '/' && !out.empty()) joined += '/';
    return joined;
}

std::string collapse_spaces(std::string_view v) {
    std::string out;
    bool space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

}  // namespace

std::string amz_date(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string hex_sha256(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return hex(md, len);
}

std::string canonical_uri(std::string_view path) { return core::percent_encode(normalize_path(path), true); }

std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> params;
    std::size_t start = 0;
    while (start < query.size()) {
        std::size_t amp = query.find('&', start);
        if (amp == std::string_view::npos) amp = query.size();
        std::string_view pair = query.substr(start, amp - start);
        start = amp + 1;
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        std::string_view k = pair.substr(0, eq);
        std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        params.emplace_back(core::percent_encode(core::percent_decode(k), false), core::percent_encode(core::percent_decode(v), false));
    }
    std::sort(params.begin(), params.end());
    std::string out;
    for (const auto& [k, v] : params) out += (out.empty() ? "" : "&") + k + "=" + v;
    return out;
}

std::pair<std::string, std::string> canonical_headers(const core::header_list& headers) {
    std::map<std::string, std::string> joined;
    for (const auto& e : headers.entries()) {
        std::string& slot = joined[lower(e.name)];
        slot += (slot.empty() ? "" : ",") + collapse_spaces(e.value);
    }
    std::string canon, names;
    for (const auto& [n, v] : joined) {
        canon += n + ":" + v + "\n";
        names += (names.empty() ? "" : ";") + n;
    }
    return {canon, names};
}

std::string canonical_request(const request_to_sign& req) {
    const auto [canon, names] = canonical_headers(req.headers);
    const std::string uri = req.path_as_sent ? (req.path.empty() ? std::string("/") : req.path) : canonical_uri(req.path);
    return req.method + "\n" + uri + "\n" + canonical_query(req.query) + "\n" + canon + "\n" + names +
           "\n" + req.payload_hash;
}

std::string string_to_sign(std::string_view canonical, std::string_view amzdate, std::string_view credential_scope) {
    return "AWS4-HMAC-SHA256\n" + std::string(amzdate) + "\n" + std::string(credential_scope) + "\n" + hex_sha256(canonical);
}

std::string signing_key(std::string_view secret_access_key, std::string_view date, const scope& s) {
    std::string k = "AWS4" + std::string(secret_access_key);
    std::string out = hmac_raw(k, date);
    OPENSSL_cleanse(k.data(), k.size());
    for (std::string_view part : {std::string_view(s.region), std::string_view(s.service), std::string_view("aws4_request")}) {
        std::string next = hmac_raw(out, part);
        OPENSSL_cleanse(out.data(), out.size());
        out = std::move(next);
    }
    return out;
}

namespace {

// The hex signature of `req` as it stands, for the scope "date/region/service/aws4_request".
std::string signature_of(const request_to_sign& req, const credentials& creds, const scope& s, const std::string& date_time,
                         const std::string& credential_scope) {
    const std::string to_sign = string_to_sign(canonical_request(req), date_time, credential_scope);
    std::string key = signing_key(creds.secret_access_key, date_time.substr(0, 8), s);
    const std::string mac = hmac_raw(key, to_sign);
    OPENSSL_cleanse(key.data(), key.size());
    return hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

std::string scope_of(const std::string& date_time, const scope& s) {
    return date_time.substr(0, 8) + "/" + s.region + "/" + s.service + "/aws4_request";
}

}  // namespace

void sign(request_to_sign& req, const credentials& creds, const scope& s, std::chrono::system_clock::time_point now) {
    const std::string date_time = amz_date(now);
    req.headers.erase("Authorization");
    req.headers.set("X-Amz-Date", date_time);
    req.headers.erase("X-Amz-Security-Token");
    if (!creds.session_token.empty()) req.headers.set("X-Amz-Security-Token", creds.session_token);
    const std::string credential_scope = scope_of(date_time, s);
    const std::string signature = signature_of(req, creds, s, date_time, credential_scope);
    const auto names = canonical_headers(req.headers).second;
    req.headers.add("Authorization", "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" + credential_scope +
                                         ", SignedHeaders=" + names + ", Signature=" + signature);
}

void presign(request_to_sign& req, const credentials& creds, const scope& s, std::chrono::system_clock::time_point now,
             std::chrono::seconds expires) {
    const std::string date_time = amz_date(now);
    const std::string credential_scope = scope_of(date_time, s);
    std::string q = remove_query_params(req.query, {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                                    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"});
    auto append = [&q](std::string_view k, std::string_view v) {
        q += (q.empty() ? "" : "&") + std::string(k) + "=" + core::percent_encode(v, false);
    };
    append("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
    append("X-Amz-Credential", creds.access_key_id + "/" + credential_scope);
    append("X-Amz-Date", date_time);
    append("X-Amz-Expires", std::to_string(expires.count()));
    append("X-Amz-SignedHeaders", canonical_headers(req.headers).second);
    if (!creds.session_token.empty()) append("X-Amz-Security-Token", creds.session_token);
    req.query = std::move(q);
    const std::string signature = signature_of(req, creds, s, date_time, credential_scope);
    req.query += "&X-Amz-Signature=" + signature;
}

std::vector<std::pair<std::string, std::string>> query_params(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t start = 0;
    while (start < query.size()) {
        std::size_t amp = query.find('&', start);
        if (amp == std::string_view::npos) amp = query.size();
        const std::string_view pair = query.substr(start, amp - start);
        start = amp + 1;
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        out.emplace_back(core::percent_decode(pair.substr(0, eq)),
                         eq == std::string_view::npos ? std::string() : core::percent_decode(pair.substr(eq + 1)));
    }
    return out;
}

std::string remove_query_params(std::string_view query, std::initializer_list<std::string_view> keys) {
    std::string out;
    std::size_t start = 0;
    while (start < query.size()) {
        std::size_t amp = query.find('&', start);
        if (amp == std::string_view::npos) amp = query.size();
        const std::string_view pair = query.substr(start, amp - start);
        start = amp + 1;
        if (pair.empty()) continue;
        const std::string key = core::percent_decode(pair.substr(0, pair.find('=')));
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
        out += (out.empty() ? "" : "&") + std::string(pair);
    }
    return out;
}

}  // namespace iron::aws
