#include "transforms/aws_auth/aws_auth.hpp"

#include <algorithm>

#include <boost/json/string.hpp>
#include <openssl/crypto.h>

#include "core/headers.hpp"
#include "secrets/await.hpp"
#include "transforms/aws_auth/client_signature.hpp"
#include "transforms/json_rejection.hpp"
#include "transforms/signable_body.hpp"

namespace iron::transforms::aws_auth {
namespace {

using pipeline::verdict;

boost::json::value text(std::string_view s) { return boost::json::string_view(s.data(), s.size()); }

verdict refuse(pipeline::exchange& ex, int status, std::string_view reason) {
    return json_rejection(ex, status, "aws_auth", reason);
}

// Credentials for one request, wiped when the request is done with them.
struct held_credentials {
    aws::credentials c;
    ~held_credentials() {
        for (std::string* s : {&c.secret_access_key, &c.session_token})
            if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
    }
};

bool allowed(const std::vector<std::string>& list, const std::string& value) {
    return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

bool header_safe(std::string_view v) { return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

// The headers the proxy sets itself: never copied from the client's list.
bool set_by_signer(std::string_view lower_name) {
    return lower_name == "host" || lower_name == "authorization" || lower_name == "x-amz-date" ||
           lower_name == "x-amz-security-token" || lower_name == "x-amz-content-sha256";
}

constexpr std::string_view unsigned_trailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

// What the new signature says about the body.
enum class payload { unsigned_, client_trailer, body_hash, chunk_signed };

payload payload_of(const pipeline::exchange& ex, const client_signature& sig, bool unsigned_payload) {
    // A presigned S3 URL never covers the body; other services' presigned URLs do (as botocore).
    if ((sig.presigned && sig.service == "s3") || unsigned_payload) return payload::unsigned_;
    if (sig.presigned) return payload::body_hash;
    const auto claim = ex.request_headers.get("X-Amz-Content-Sha256");
    if (claim && *claim == unsigned_trailer) return payload::client_trailer;
    // Each chunk's signature chains from the client's, which the proxy replaces: cannot be re-signed.
    if (claim && claim->starts_with("STREAMING-")) return payload::chunk_signed;
    return payload::body_hash;
}

// Host, then the client's signed headers as they stand now (all their lines).
aws::request_to_sign to_sign(const pipeline::exchange& ex, const client_signature& sig) {
    aws::request_to_sign req;
    req.method = ex.method;
    req.path = ex.raw_path.empty() ? ex.path : ex.raw_path;
    req.query = ex.raw_query;
    req.path_as_sent = sig.service == "s3";
    req.headers.add("Host", ex.host);
    for (const auto& name : sig.signed_headers) {
        if (set_by_signer(name)) continue;
        for (const auto& e : ex.request_headers.entries())
            if (core::iequals(e.name, name)) req.headers.add(e.name, e.value);
    }
    return req;
}

void copy_header(const core::header_list& from, core::header_list& to, std::string_view name) {
    if (auto v = from.get(name)) to.add(std::string(name), std::string(*v));
}

// The signature a presigned query now carries: a bearer credential for this request until it
// expires, so nothing but the origin may see it.
void note_presigned_signature(pipeline::exchange& ex, std::string_view query) {
    constexpr std::string_view key = "X-Amz-Signature=";
    const auto at = query.find(key);
    if (at == std::string_view::npos) return;
    const auto start = at + key.size();
    ex.note_injected(query.substr(start, query.find('&', start) - start));
}

}  // namespace

aws_auth_transform::aws_auth_transform(aws_auth_settings s, std::vector<pipeline::host_rule> rules)
    : settings_(std::move(s)), rules_(std::move(rules)) {
    if (settings_.workload_identity) {
        chain_ = std::make_unique<aws::credential_cache>([region = settings_.provider_region](outbound::cancel_handle& c) {
            return aws::resolve_default_chain({region}, c);
        });
    } else {
        sources_ = {settings_.access_key_id.get(), settings_.secret_access_key.get()};
    }
}

bool aws_auth_transform::wants_request_body(const pipeline::exchange& ex) const {
    if (settings_.unsigned_payload || ex.is_connect || !rules_.matches_any(ex)) return false;
    const auto sig = read_client_signature(ex.request_headers, ex.raw_query);
    return sig && payload_of(ex, *sig, false) == payload::body_hash;  // no signature: refused unread
}

bool aws_auth_transform::awaits_request(const pipeline::exchange& ex) const {
    if (ex.is_connect || !rules_.matches_any(ex)) return false;
    return chain_ ? chain_->needs_wait() : secrets::any_pending(sources_);
}

boost::asio::awaitable<pipeline::verdict> aws_auth_transform::on_request_async(pipeline::exchange& ex) const {
    if (chain_) co_await chain_->await_usable(secrets::first_fetch_wait);
    else co_await secrets::await_fetched(sources_, secrets::first_fetch_wait);
    co_return on_request(ex);
}

result<aws::credentials> aws_auth_transform::credentials_now() const {
    if (chain_) return chain_->current();
    auto id = settings_.access_key_id->current();
    if (!id) return make_error(settings_.access_key_id->name() + ": " + id.message());
    auto secret = settings_.secret_access_key->current();
    if (!secret) return make_error(settings_.secret_access_key->name() + ": " + secret.message());
    return aws::credentials{**id, **secret, ""};
}

pipeline::verdict aws_auth_transform::on_request(pipeline::exchange& ex) const {
    if (ex.is_connect || !rules_.matches_any(ex)) return verdict::next();
    const auto sig = read_client_signature(ex.request_headers, ex.raw_query);
    if (!sig) return refuse(ex, 400, "missing_sigv4");
    ex.note("service", text(sig->service));
    ex.note("region", text(sig->region));
    if (!allowed(settings_.allowed_regions, sig->region)) return refuse(ex, 403, "region_not_allowed");
    if (!allowed(settings_.allowed_services, sig->service)) return refuse(ex, 403, "service_not_allowed");

    std::string payload_hash(aws::unsigned_payload);
    switch (payload_of(ex, *sig, settings_.unsigned_payload)) {
        case payload::chunk_signed: return refuse(ex, 400, "streaming_payload_not_supported");
        case payload::client_trailer: payload_hash = unsigned_trailer; break;
        case payload::body_hash:
            if (auto refused = check_signable_body(ex, settings_.allow_chunked_body, "aws_auth"))
                return refuse(ex, refused->status, refused->reason);
            payload_hash = aws::hex_sha256(ex.request_body.data);
            break;
        case payload::unsigned_: break;
    }

    held_credentials creds;
    if (auto got = credentials_now(); got) {
        creds.c = std::move(*got);
    } else {
        ex.note("credential", text(chain_ ? "workload_identity" : "access_key_id/secret_access_key"));
        ex.note("error", text(got.message()));
        return refuse(ex, 502, "credential_unavailable");
    }
    if (!header_safe(creds.c.access_key_id) || !header_safe(creds.c.session_token)) {
        ex.note("error", text("credential holds CR, LF or NUL"));
        return refuse(ex, 502, "credential_unavailable");
    }

    aws::request_to_sign req = to_sign(ex, *sig);
    req.payload_hash = payload_hash;
    const aws::scope scope{sig->region, sig->service};
    const auto now = std::chrono::system_clock::now();
    ex.note_injected(creds.c.session_token);
    if (sig->presigned) {
        aws::presign(req, creds.c, scope, now, sig->expires);
        note_presigned_signature(ex, req.query);
        ex.raw_query = std::move(req.query);
    } else {
        req.headers.add("X-Amz-Content-Sha256", payload_hash);
        aws::sign(req, creds.c, scope, now);
        for (std::string_view h : {"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"})
            ex.request_headers.erase(h);
        for (std::string_view h : {"X-Amz-Content-Sha256", "X-Amz-Date", "X-Amz-Security-Token", "Authorization"})
            copy_header(req.headers, ex.request_headers, h);
        if (auto authorization = ex.request_headers.get("Authorization")) ex.note_injected(*authorization);
    }
    for (auto& e : req.headers.entries())
        if (core::iequals(e.name, "X-Amz-Security-Token")) OPENSSL_cleanse(e.value.data(), e.value.size());
    ex.note("injected", true);
    return verdict::next();
}

void aws_auth_transform::refresh() const {
    if (chain_) chain_->reload();
    if (settings_.access_key_id) settings_.access_key_id->reload();
    if (settings_.secret_access_key) settings_.secret_access_key->reload();
}

}  // namespace iron::transforms::aws_auth
