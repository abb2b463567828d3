#include "transforms/oauth_token/oauth_token.hpp"

#include <chrono>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/crypto.h>

#include "core/log.hpp"
#include "crypto/jwt.hpp"
#include "secrets/await.hpp"
#include "token_mint/stub.hpp"

namespace iron::transforms::oauth_token {
namespace {

using pipeline::verdict;
using values_t = std::vector<std::pair<std::string, std::string>>;

// Credential values for one mint, wiped when done.
struct wiped_values {
    values_t values;
    ~wiped_values() {
        for (auto& [name, v] : values)
            if (!v.empty()) OPENSSL_cleanse(v.data(), v.size());
    }
};

const std::string& value_of(const values_t& values, std::string_view field) {
    for (const auto& [n, v] : values)
        if (n == field) return v;
    static const std::string none;
    return none;
}

std::string joined(const std::vector<std::string>& scopes) {
    std::string out;
    for (const auto& s : scopes) out += (out.empty() ? "" : " ") + s;
    return out;
}

// Reads every source; the first unavailable one says why (its name, never a value).
result<void> read_all(const std::vector<named_source>& sources, values_t& out, std::string_view what) {
    for (const auto& [field, src] : sources) {
        auto v = src->current();
        if (!v) return make_error("loading " + std::string(what) + field + " from " + src->name() + ": " + v.message());
        out.emplace_back(field, **v);
    }
    return ok();
}

result<std::string> jwt_assertion(const token_entry& e, const values_t& v) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    // iat a little in the past: the endpoint's clock may run behind ours.
    boost::json::object claims{{"iss", value_of(v, "issuer")}, {"sub", value_of(v, "subject")}, {"aud", e.audience},
                               {"iat", now - 10}, {"exp", now + 3600}};
    if (!e.scopes.empty()) claims["scope"] = joined(e.scopes);
    return crypto::sign_jwt_rs256(boost::json::serialize(claims), value_of(v, "private_key"), value_of(v, "private_key_id"));
}

void add_client_auth(std::string& body, const values_t& v) {
    if (const auto& id = value_of(v, "client_id"); !id.empty()) token_mint::add_form_field(body, "client_id", id);
    if (const auto& secret = value_of(v, "client_secret"); !secret.empty()) token_mint::add_form_field(body, "client_secret", secret);
}

}  // namespace

std::vector<const secrets::source*> token_entry::sources() const {
    std::vector<const secrets::source*> out;
    for (const auto& [n, s] : credentials) out.push_back(s.get());
    for (const auto& [n, s] : endpoint_headers) out.push_back(s.get());
    return out;
}

result<std::unique_ptr<token_mint::token_call>> build_call(const token_entry& e, const values_t& values, const values_t& headers,
                                                           const secrets::value_ptr& refresh_token) {
    auto call = std::make_unique<token_mint::token_call>();
    call->url = e.token_endpoint;
    for (const auto& [name, value] : headers) call->headers.add(name, value);
    std::string& body = call->body;
    if (e.grant == "refresh_token") {
        token_mint::add_form_field(body, "grant_type", "refresh_token");
        token_mint::add_form_field(body, "refresh_token", refresh_token ? *refresh_token : value_of(values, "refresh_token"));
        add_client_auth(body, values);
    } else if (e.grant == "client_credentials") {
        token_mint::add_form_field(body, "grant_type", "client_credentials");
        if (!e.scopes.empty()) token_mint::add_form_field(body, "scope", joined(e.scopes));
        add_client_auth(body, values);
    } else if (e.grant == "password") {
        token_mint::add_form_field(body, "grant_type", "password");
        token_mint::add_form_field(body, "username", value_of(values, "username"));
        token_mint::add_form_field(body, "password", value_of(values, "password"));
        if (!e.scopes.empty()) token_mint::add_form_field(body, "scope", joined(e.scopes));
        add_client_auth(body, values);
    } else {
        auto assertion = jwt_assertion(e, values);
        if (!assertion) return assertion.err();
        token_mint::add_form_field(body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        token_mint::add_form_field(body, "assertion", *assertion);
        OPENSSL_cleanse(assertion->data(), assertion->size());
    }
    return call;
}

oauth_token_transform::oauth_token_transform(std::vector<std::unique_ptr<token_entry>> entries) : entries_(std::move(entries)) {}

const token_entry* oauth_token_transform::match(const pipeline::exchange& ex) const {
    for (const auto& e : entries_)
        if (e->rules.matches_any(ex)) return e.get();
    return nullptr;
}

bool oauth_token_transform::is_token_endpoint(const pipeline::exchange& ex) const {
    if (ex.is_connect) return false;
    for (const auto& e : entries_)
        if (ex.policy_host == e->stub_host && ex.path == e->stub_path) return true;
    return false;
}

bool oauth_token_transform::awaits_request(const pipeline::exchange& ex) const {
    return !is_token_endpoint(ex) && match(ex) != nullptr;
}

verdict oauth_token_transform::settle(pipeline::exchange& ex, const token_entry& e, const token_mint::mint_outcome& got) const {
    ex.note("grant", boost::json::string_view(e.grant));
    if (got.ok()) {
        token_mint::inject(ex, e.header, e.value_prefix, *got.token);
        return verdict::next();
    }
    log::warn("oauth_token mint failed", {{"grant", e.grant}, {"reason", got.reason}, {"error", got.detail}});
    ex.note("error", boost::json::string_view(got.reason));
    if (!e.require) {
        ex.note("skipped", "token_unavailable");
        return verdict::next();
    }
    ex.note("rejected", "token_unavailable");
    // The grant is one of four config-checked words: safe to put in the body as it is.
    return token_mint::made_response(verdict::reject(502, "oauth_token could not mint a token (" + got.reason + ")"),
                                     "application/json",
                                     R"({"error":"oauth_token failed to mint an access token","grant":")" + e.grant + R"("})");
}

verdict oauth_token_transform::on_request(pipeline::exchange& ex) const {
    if (is_token_endpoint(ex)) return token_mint::access_token_stub(ex);
    const token_entry* e = match(ex);
    if (e == nullptr) return verdict::next();
    return settle(ex, *e, token_mint::mint_outcome::failure("mint_failed", "the token was not awaited"));
}

boost::asio::awaitable<verdict> oauth_token_transform::on_request_async(pipeline::exchange& ex) const {
    if (is_token_endpoint(ex)) co_return token_mint::access_token_stub(ex);
    const token_entry* e = match(ex);
    if (e == nullptr) co_return verdict::next();
    const auto sources = e->sources();
    if (secrets::any_pending(sources)) co_await secrets::await_fetched(sources, secrets::first_fetch_wait);

    auto values = std::make_shared<wiped_values>();
    auto headers = std::make_shared<wiped_values>();
    auto loaded = read_all(e->credentials, values->values, "");
    if (loaded) loaded = read_all(e->endpoint_headers, headers->values, "token_endpoint_headers ");
    if (!loaded) co_return settle(ex, *e, token_mint::mint_outcome::failure("mint_failed", loaded.message()));

    token_mint::fingerprint_builder fp;
    for (const auto& [n, v] : values->values) fp.add(n, v);
    for (const auto& [n, v] : headers->values) fp.add("header:" + n, v);
    const std::string fingerprint = fp.finish();

    auto fetch = [this, e, values, headers, fingerprint]() -> boost::asio::awaitable<token_mint::mint_outcome> {
        secrets::value_ptr rotated;
        {
            std::lock_guard lock(e->rotated_mu);
            if (e->rotated_for == fingerprint) rotated = e->rotated_refresh_token;
        }
        auto call = build_call(*e, values->values, headers->values, rotated);
        if (!call) co_return token_mint::mint_outcome::failure("mint_failed", call.message());
        token_mint::token_reply reply = co_await token_mint::call_endpoint(clients_, **call);
        if (reply.refresh_token && e->grant == "refresh_token") {
            std::lock_guard lock(e->rotated_mu);
            e->rotated_for = fingerprint;
            e->rotated_refresh_token = reply.refresh_token;
        }
        co_return reply.outcome;
    };
    token_mint::mint_outcome got = co_await e->cache.get(fingerprint, fetch, token_mint::call_timeout + std::chrono::seconds(5));
    co_return settle(ex, *e, got);
}

void oauth_token_transform::refresh() const {
    for (const auto& e : entries_) {
        for (const auto& [n, s] : e->credentials) s->reload();
        for (const auto& [n, s] : e->endpoint_headers) s->reload();
    }
}

}  // namespace iron::transforms::oauth_token
