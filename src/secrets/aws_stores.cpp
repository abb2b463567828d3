#include "secrets/aws_stores.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>

#include "aws/credential_cache.hpp"
#include "aws/environment.hpp"
#include "aws/sigv4.hpp"
#include "config/yaml_util.hpp"
#include "secrets/store_reply.hpp"

namespace iron::secrets {
namespace {

namespace json = boost::json;

// One JSON-1.1 operation of one AWS service.
struct aws_operation {
    std::string env_suffix;   // AWS_ENDPOINT_URL_<this>
    std::string host_prefix;  // <this>.<region>.amazonaws.com
    std::string service;      // SigV4 signing name
    std::string target;       // X-Amz-Target
    std::string what;         // "aws_sm secret \"id\"" for errors
};

class aws_json_fetcher final : public store_fetcher {
public:
    aws_json_fetcher(aws_operation op, std::string region, std::string body, std::vector<std::string> value_path)
        : op_(std::move(op)),
          region_(std::move(region)),
          body_(std::move(body)),
          value_path_(std::move(value_path)),
          creds_([r = region_](outbound::cancel_handle& c) { return aws::resolve_default_chain({r}, c); }) {}

    result<std::string> fetch(outbound::cancel_handle& cancel) override {
        auto reply = call(cancel);
        if (!reply) return make_error("fetching " + op_.what + ": " + reply.message());
        auto value = take_string(reply->body, value_path_);
        OPENSSL_cleanse(reply->body.data(), reply->body.size());
        if (!value) return make_error("fetching " + op_.what + ": " + value.message());
        if (value->empty()) return make_error(op_.what + " has an empty value");
        return value;
    }

private:
    result<outbound::http_reply> call(outbound::cancel_handle& cancel) {
        auto region = aws::resolve_region(region_);
        if (!region) return region.err();
        const std::string endpoint = aws::resolve_endpoint(op_.env_suffix, op_.host_prefix, *region);
        if (!client_ || endpoint != endpoint_) {
            auto url = outbound::parse_base_url(endpoint, "AWS endpoint");
            if (!url) return url.err();
            auto client = outbound::http_client::create(std::move(*url));
            if (!client) return client.err();
            client_ = std::move(*client);
            endpoint_ = endpoint;
        }
        auto creds = creds_.get_blocking(cancel, remote_source::fetch_timeout);
        if (!creds) return creds.err();
        aws::request_to_sign req;
        req.method = "POST";
        req.path = client_->url().prefix + "/";
        req.headers.add("Host", client_->url().host_header());
        req.headers.add("Content-Type", "application/x-amz-json-1.1");
        req.headers.add("X-Amz-Target", op_.target);
        req.payload_hash = aws::hex_sha256(body_);
        aws::sign(req, *creds, {*region, op_.service}, std::chrono::system_clock::now());
        OPENSSL_cleanse(creds->secret_access_key.data(), creds->secret_access_key.size());
        outbound::http_request http;
        http.target = "/";
        http.body = body_;
        for (auto& h : req.headers.entries())
            if (!core::iequals(h.name, "Host")) http.headers.add(std::move(h.name), std::move(h.value));
        auto reply = client_->send_blocking(http, remote_source::fetch_timeout, &cancel);
        if (!reply) return reply;
        if (reply->status != 200) return make_error(aws_error_text(reply->status, reply->body));
        return reply;
    }

    aws_operation op_;
    std::string region_;
    std::string body_;
    std::vector<std::string> value_path_;
    std::string endpoint_;
    std::unique_ptr<outbound::http_client> client_;
    aws::credential_cache creds_;  // the default chain, resolved on this store's first fetch
};

}  // namespace

std::unique_ptr<store_fetcher> make_aws_sm_fetcher(std::string secret_id, std::string region) {
    json::object body;
    body["SecretId"] = secret_id;
    aws_operation op{"SECRETS_MANAGER", "secretsmanager", "secretsmanager", "secretsmanager.GetSecretValue",
                     "aws_sm secret " + config::go_quote(secret_id)};
    return std::make_unique<aws_json_fetcher>(std::move(op), std::move(region), json::serialize(body),
                                              std::vector<std::string>{"SecretString"});
}

std::unique_ptr<store_fetcher> make_aws_ssm_fetcher(std::string name, std::string region, bool with_decryption) {
    json::object body;
    body["Name"] = name;
    body["WithDecryption"] = with_decryption;
    aws_operation op{"SSM", "ssm", "ssm", "AmazonSSM.GetParameter", "aws_ssm parameter " + config::go_quote(name)};
    return std::make_unique<aws_json_fetcher>(std::move(op), std::move(region), json::serialize(body),
                                              std::vector<std::string>{"Parameter", "Value"});
}

}  // namespace iron::secrets
