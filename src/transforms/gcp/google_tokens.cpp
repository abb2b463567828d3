#include "transforms/gcp/google_tokens.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <openssl/crypto.h>

#include "core/percent.hpp"
#include "config/yaml_util.hpp"
#include "gcp/credentials.hpp"
#include "secrets/file_source.hpp"
#include "secrets/parse.hpp"

namespace iron::transforms::gcp {
namespace {

using token_mint::mint_outcome;

std::string joined(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (const auto& s : items) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

// The whole file, or an error naming it (never its content).
result<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error("reading credentials file " + path + ": cannot open it");
    std::ostringstream ss;
    ss << in.rdbuf();
    return std::move(ss).str();
}

bool exists(const std::string& path) { return !path.empty() && std::ifstream(path).good(); }

// An ADC credentials file: $GOOGLE_APPLICATION_CREDENTIALS, else gcloud's well-known file; "" for
// neither (then the metadata server is asked).
std::string adc_file_path() {
    if (const char* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS"); env && *env) return env;
    std::string dir;
    if (const char* c = std::getenv("CLOUDSDK_CONFIG"); c && *c) dir = c;
    else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.config/gcloud";
    const std::string well_known = dir.empty() ? std::string() : dir + "/application_default_credentials.json";
    return exists(well_known) ? well_known : std::string();
}

// POSTs a token request body to a credentials file's token_uri.
boost::asio::awaitable<mint_outcome> post_to_token_uri(token_mint::endpoint_clients& clients, std::string token_uri,
                                                       std::string body, std::string token_field, std::string principal) {
    token_mint::token_call call;
    call.url = std::move(token_uri);
    call.body = std::move(body);
    call.token_field = std::move(token_field);
    token_mint::token_reply reply = co_await token_mint::call_endpoint(clients, call);
    reply.outcome.principal = std::move(principal);
    co_return reply.outcome;
}

boost::asio::awaitable<mint_outcome> from_metadata_server(token_mint::endpoint_clients& clients,
                                                          const std::vector<std::string>& scopes) {
    token_mint::token_call call;
    call.method = "GET";
    call.url = metadata_base_url() + "/computeMetadata/v1/instance/service-accounts/default/token";
    if (!scopes.empty()) call.url += "?scopes=" + core::percent_encode(joined(scopes, ","));
    call.headers.add("Metadata-Flavor", "Google");
    token_mint::token_reply reply = co_await token_mint::call_endpoint(clients, call);
    if (!reply.outcome.ok()) reply.outcome.detail = "metadata server: " + reply.outcome.detail;
    co_return reply.outcome;
}

}  // namespace

result<secrets::value_ptr> google_credentials::keyfile_value() const {
    if (!keyfile) return secrets::value_ptr();
    auto v = keyfile->current();
    if (!v) return make_error("loading GCP keyfile from " + keyfile->name() + ": " + v.message());
    return *v;
}

std::string google_credentials::fingerprint(const secrets::value_ptr& keyfile) {
    if (!keyfile) return "adc";
    token_mint::fingerprint_builder fp;
    fp.add("keyfile", *keyfile);
    return fp.finish();
}

std::string metadata_base_url() {
    const char* host = std::getenv("GCE_METADATA_HOST");
    return std::string("http://") + (host && *host ? host : "metadata.google.internal");
}

boost::asio::awaitable<mint_outcome> fetch_access_token(token_mint::endpoint_clients& clients, secrets::value_ptr keyfile,
                                                        std::vector<std::string> scopes, std::string subject) {
    std::string text;
    if (keyfile) {
        text = *keyfile;
    } else {
        const std::string path = adc_file_path();
        if (path.empty()) co_return co_await from_metadata_server(clients, scopes);
        auto read = read_file(path);
        if (!read) co_return mint_outcome::failure("mint_failed", read.message());
        text = std::move(*read);
    }
    auto creds = iron::gcp::parse_adc(text);
    OPENSSL_cleanse(text.data(), text.size());
    if (!creds) co_return mint_outcome::failure("mint_failed", "parsing GCP credentials: " + creds.message());
    // A keyfile must be a service account's; ADC may also be a user's refresh token.
    if (keyfile && creds->type != "service_account")
        co_return mint_outcome::failure("mint_failed", "parsing GCP service account keyfile: type is not service_account");
    result<std::string> body = make_error("unset");
    const auto now = std::chrono::system_clock::now();
    if (creds->type == "service_account") {
        iron::gcp::assertion_claims claims;
        claims.scope = joined(scopes, " ");
        claims.subject = subject;
        body = iron::gcp::assertion_request_body(*creds, claims, now);
    } else {
        body = iron::gcp::token_request_body(*creds, joined(scopes, " "), now);
    }
    if (!body) co_return mint_outcome::failure("mint_failed", "signing the token request: " + body.message());
    co_return co_await post_to_token_uri(clients, creds->token_uri, std::move(*body), "access_token", creds->client_email);
}

boost::asio::awaitable<mint_outcome> fetch_id_token(token_mint::endpoint_clients& clients, secrets::value_ptr keyfile,
                                                    std::string audience) {
    std::string text = *keyfile;
    auto creds = iron::gcp::parse_adc(text);
    OPENSSL_cleanse(text.data(), text.size());
    if (!creds || creds->type != "service_account")
        co_return mint_outcome::failure("mint_failed", "parsing GCP service account keyfile: not a service account key");
    iron::gcp::assertion_claims claims;
    claims.target_audience = std::move(audience);
    auto body = iron::gcp::assertion_request_body(*creds, claims, std::chrono::system_clock::now());
    if (!body) co_return mint_outcome::failure("mint_failed", "signing the token request: " + body.message());
    co_return co_await post_to_token_uri(clients, creds->token_uri, std::move(*body), "id_token", creds->client_email);
}

result<std::shared_ptr<secrets::source>> keyfile_source(const YAML::Node& keyfile_node, const config::yaml_ctx& ctx,
                                                        const std::string& keyfile_path) {
    if (!config::is_absent(keyfile_node)) return secrets::parse_source(keyfile_node, ctx.child("keyfile"));
    return std::shared_ptr<secrets::source>(std::make_shared<secrets::file_source>(
        keyfile_path, secrets::file_source::duration(0), secrets::file_source::duration(0), keyfile_path));
}

}  // namespace iron::transforms::gcp
