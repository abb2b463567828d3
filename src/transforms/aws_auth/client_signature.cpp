#include "transforms/aws_auth/client_signature.hpp"

#include <algorithm>
#include <cstdint>

#include "aws/sigv4.hpp"

namespace iron::transforms::aws_auth {
namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
constexpr std::int64_t max_expires = 7 * 24 * 3600;  // SigV4's limit for a presigned URL

bool plain_token(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (unsigned char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::vector<std::string> split_names(std::string_view list) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t semi = list.find(';', start);
        if (semi == std::string_view::npos) semi = list.size();
        std::string name(trim(list.substr(start, semi - start)));
        for (char& c : name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (!name.empty()) out.push_back(std::move(name));
        start = semi + 1;
    }
    return out;
}

std::optional<client_signature> from_header(std::string_view auth) {
    if (!auth.starts_with(algorithm) || auth.size() == algorithm.size() || auth[algorithm.size()] != ' ') return std::nullopt;
    std::string_view rest = auth.substr(algorithm.size() + 1);
    std::optional<std::pair<std::string, std::string>> scope;
    client_signature sig;
    std::size_t start = 0;
    while (start <= rest.size()) {
        std::size_t comma = rest.find(',', start);
        if (comma == std::string_view::npos) comma = rest.size();
        const std::string_view part = trim(rest.substr(start, comma - start));
        start = comma + 1;
        if (part.starts_with("Credential=")) scope = parse_credential_scope(part.substr(11));
        else if (part.starts_with("SignedHeaders=")) sig.signed_headers = split_names(part.substr(14));
    }
    if (!scope) return std::nullopt;
    sig.region = std::move(scope->first);
    sig.service = std::move(scope->second);
    return sig;
}

std::optional<client_signature> from_query(std::string_view raw_query) {
    if (raw_query.find("X-Amz-Credential") == std::string_view::npos) return std::nullopt;
    std::optional<std::pair<std::string, std::string>> scope;
    client_signature sig;
    sig.presigned = true;
    bool algorithm_ok = false;
    for (const auto& [k, v] : aws::query_params(raw_query)) {
        if (k == "X-Amz-Algorithm") algorithm_ok = v == algorithm;
        else if (k == "X-Amz-Credential") scope = parse_credential_scope(v);
        else if (k == "X-Amz-SignedHeaders") sig.signed_headers = split_names(v);
        else if (k == "X-Amz-Expires") {
            const std::int64_t n = v.size() <= 12 && !v.empty() && v.find_first_not_of("0123456789") == std::string::npos
                                       ? std::stoll(v) : 0;
            if (n < 1) return std::nullopt;
            sig.expires = std::chrono::seconds(std::min(n, max_expires));
        }
    }
    if (!algorithm_ok || !scope) return std::nullopt;
    sig.region = std::move(scope->first);
    sig.service = std::move(scope->second);
    return sig;
}

}  // namespace

std::optional<std::pair<std::string, std::string>> parse_credential_scope(std::string_view credential) {
    // AK / date / region / service / aws4_request, from the right: an access key has no '/'.
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= credential.size()) {
        std::size_t slash = credential.find('/', start);
        if (slash == std::string_view::npos) slash = credential.size();
        parts.push_back(credential.substr(start, slash - start));
        start = slash + 1;
    }
    if (parts.size() != 5 || parts[4] != "aws4_request" || parts[0].empty()) return std::nullopt;
    if (parts[1].size() != 8 || parts[1].find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    if (!plain_token(parts[2]) || !plain_token(parts[3])) return std::nullopt;
    return std::make_pair(std::string(parts[2]), std::string(parts[3]));
}

std::optional<client_signature> read_client_signature(const core::header_list& headers, std::string_view raw_query) {
    if (auto auth = headers.get("Authorization")) return from_header(*auth);
    return from_query(raw_query);
}

}  // namespace iron::transforms::aws_auth
