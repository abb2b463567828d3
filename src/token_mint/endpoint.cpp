#include "token_mint/endpoint.hpp"

#include <cctype>
#include <cstdio>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/log.hpp"
#include "core/percent.hpp"
#include "crypto/jwt.hpp"

namespace iron::token_mint {
namespace {

namespace json = boost::json;

void wipe(std::string& s) {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

// An OAuth2 error code is a short token (RFC 6749 5.2); anything else is not repeated.
bool is_error_code(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (unsigned char c : s)
        if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
    return true;
}

std::int64_t to_seconds(const json::value* v) {
    if (v == nullptr) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
    if (v->is_string()) {  // some providers send "3600"
        std::int64_t n = 0;
        for (char c : v->get_string()) {
            if (c < '0' || c > '9' || n > 100000000) return 0;
            n = n * 10 + (c - '0');
        }
        return n;
    }
    return 0;
}

// A form-encoded answer (some providers send one) as a JSON object.
json::object form_as_object(std::string_view body) {
    json::object o;
    while (!body.empty()) {
        const auto amp = body.find('&');
        const std::string_view pair = body.substr(0, amp);
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos)
            o[core::percent_decode(pair.substr(0, eq), true)] = core::percent_decode(pair.substr(eq + 1), true);
        if (amp == std::string_view::npos) break;
        body.remove_prefix(amp + 1);
    }
    return o;
}

json::object parse_object(std::string_view body) {
    std::size_t i = 0;
    while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
    if (i < body.size() && body[i] != '{') return form_as_object(body);
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec);
    if (ec || !doc.is_object()) return {};
    return std::move(doc.get_object());
}

std::string string_field(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// Wipes every string in the parsed answer (the token and any refresh token were in it).
void wipe_object(json::object& o) {
    for (auto& kv : o)
        if (kv.value().is_string() && !kv.value().get_string().empty())
            OPENSSL_cleanse(kv.value().get_string().data(), kv.value().get_string().size());
}

}  // namespace

token_call::~token_call() {
    wipe(body);
    for (auto& h : headers.entries()) wipe(h.value);
}

void add_form_field(std::string& body, std::string_view name, std::string_view value) {
    if (!body.empty()) body += '&';
    body += core::percent_encode(name);
    body += '=';
    body += core::percent_encode(value);
}

std::string form_body(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    std::string body;
    for (const auto& [name, value] : fields) add_form_field(body, name, value);
    return body;
}

fingerprint_builder::fingerprint_builder() : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
fingerprint_builder::~fingerprint_builder() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void fingerprint_builder::add(std::string_view name, std::string_view value) {
    auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
    // Length-prefixed, so no two different lists of pairs hash the same input.
    for (std::string_view part : {name, value}) {
        const std::string len = std::to_string(part.size()) + ":";
        EVP_DigestUpdate(ctx, len.data(), len.size());
        EVP_DigestUpdate(ctx, part.data(), part.size());
    }
}

std::string fingerprint_builder::finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
    std::string hex;
    char buf[3];
    for (unsigned int i = 0; i < len; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        hex += buf;
    }
    return hex;
}

std::string form_field(std::string_view body, std::string_view name) {
    json::object o = form_as_object(body);
    return string_field(o, std::string(name).c_str());
}

std::int64_t jwt_expiry(std::string_view jwt) {
    const std::string payload = crypto::jwt_payload(jwt);
    boost::system::error_code ec;
    json::value doc = json::parse(payload, ec);
    if (ec || !doc.is_object()) return 0;
    return to_seconds(doc.get_object().if_contains("exp"));
}

result<std::pair<const outbound::http_client*, std::string>> endpoint_clients::for_url(std::string_view url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return make_error("token endpoint is not an absolute URL");
    const auto path_at = url.find_first_of("/?#", scheme_end + 3);
    const std::string origin(url.substr(0, path_at));
    std::string target = path_at == std::string_view::npos ? std::string("/") : std::string(url.substr(path_at));
    if (const auto hash = target.find('#'); hash != std::string::npos) target.erase(hash);
    if (target.empty() || target[0] != '/') target.insert(0, "/");
    std::lock_guard lock(mu_);
    auto& slot = clients_[origin];
    if (!slot) {
        auto parsed = outbound::parse_base_url(origin, "token endpoint");
        if (!parsed) return parsed.err();
        auto client = outbound::http_client::create(std::move(*parsed));
        if (!client) return client.err();
        slot = std::move(*client);
    }
    return std::pair<const outbound::http_client*, std::string>(slot.get(), std::move(target));
}

token_reply read_reply(int status, std::string_view body, const token_call& call) {
    token_reply out;
    json::object o = parse_object(body);
    const std::string code = string_field(o, "error");
    std::string token = string_field(o, call.token_field.c_str());
    // A token becomes a header value: one with control bytes could split the request's head.
    for (unsigned char c : token)
        if (c < 0x20 || c == 0x7f) {
            wipe(token);
            token.clear();
            break;
        }
    if (status != 200 || token.empty()) {
        wipe(token);
        wipe_object(o);
        std::string reason = is_error_code(code) ? code
                             : status != 200   ? "token_endpoint_http_" + std::to_string(status)
                                               : "mint_failed";
        out.outcome = mint_outcome::failure(reason, "token endpoint answered " + std::to_string(status) +
                                                        (is_error_code(code) ? " (" + code + ")" : std::string()) +
                                                        (status == 200 ? " without " + call.token_field : std::string()));
        return out;
    }
    std::int64_t lifetime = to_seconds(o.if_contains("expires_in"));
    if (lifetime <= 0 && call.token_field == "id_token") {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
        if (const auto exp = jwt_expiry(token); exp > 0) lifetime = exp - now.count();
    }
    out.outcome.lifetime = std::chrono::seconds(lifetime);
    if (std::string refresh = string_field(o, "refresh_token"); !refresh.empty())
        out.refresh_token = secrets::make_value(std::move(refresh));
    out.outcome.token = secrets::make_value(std::move(token));
    wipe_object(o);
    return out;
}

boost::asio::awaitable<token_reply> call_endpoint(endpoint_clients& clients, const token_call& call) {
    auto client = clients.for_url(call.url);
    if (!client) co_return token_reply{mint_outcome::failure("mint_failed", client.message()), nullptr};
    outbound::http_request req;
    req.method = call.method;
    req.target = client->second;
    req.headers = call.headers;
    if (call.method == "POST" && !req.headers.contains("Content-Type"))
        req.headers.add("Content-Type", "application/x-www-form-urlencoded");
    if (!req.headers.contains("Accept")) req.headers.add("Accept", "application/json");
    req.body = call.body;
    auto reply = co_await client->first->send(req, call_timeout);
    wipe(req.body);
    for (auto& h : req.headers.entries()) wipe(h.value);
    if (!reply) {
        co_return token_reply{mint_outcome::failure("mint_failed", "calling the token endpoint: " + reply.message()), nullptr};
    }
    token_reply out = read_reply(reply->status, reply->body, call);
    wipe(reply->body);
    co_return out;
}

}  // namespace iron::token_mint
