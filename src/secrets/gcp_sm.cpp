#include "secrets/gcp_sm.hpp"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config/yaml_util.hpp"
#include "gcp/credentials.hpp"
#include "secrets/store_reply.hpp"

namespace iron::secrets {
namespace {

constexpr std::string_view cloud_platform = "https://www.googleapis.com/auth/cloud-platform";

result<std::string> decode_base64(std::string_view in) {
    if (in.size() % 4 != 0) return make_error("payload data is not base64");
    std::string out(in.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    if (n < 0) return make_error("payload data is not base64");
    std::size_t len = static_cast<std::size_t>(n);
    for (std::size_t i = in.size(); i > 0 && in[i - 1] == '=' && len > 0; --i) --len;
    out.resize(len);
    return out;
}

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> out;
    while (true) {
        const auto slash = s.find('/');
        out.push_back(s.substr(0, slash));
        if (slash == std::string_view::npos) return out;
        s.remove_prefix(slash + 1);
    }
}

class gcp_sm_fetcher final : public store_fetcher {
public:
    gcp_sm_fetcher(std::string version_name, std::string credentials_file, std::string endpoint)
        : name_(std::move(version_name)), credentials_file_(std::move(credentials_file)), endpoint_(std::move(endpoint)) {}
    ~gcp_sm_fetcher() override {
        if (!token_.empty()) OPENSSL_cleanse(token_.data(), token_.size());
    }

    result<std::string> fetch(outbound::cancel_handle& cancel) override {
        const std::string what = "fetching gcp_sm secret " + config::go_quote(name_);
        if (auto t = ensure_token(cancel); !t) return make_error(what + ": getting an access token: " + t.message());
        auto api = client_for(endpoint_, "endpoint");
        if (!api) return make_error(what + ": " + api.message());
        outbound::http_request req;
        req.method = "GET";
        req.target = "/v1/" + name_ + ":access";
        req.headers.add("Authorization", "Bearer " + token_);
        auto reply = (*api)->send_blocking(req, remote_source::fetch_timeout, &cancel);
        OPENSSL_cleanse(req.headers.entries()[0].value.data(), req.headers.entries()[0].value.size());
        if (!reply) return make_error(what + ": " + reply.message());
        if (reply->status == 401) token_expiry_ = {};  // a revoked token: mint a new one next time
        if (reply->status != 200) return make_error(what + ": " + aws_error_text(reply->status, reply->body));
        auto data = take_string(reply->body, {"payload", "data"});
        OPENSSL_cleanse(reply->body.data(), reply->body.size());
        if (!data) return make_error(what + ": " + data.message());
        auto value = decode_base64(*data);
        OPENSSL_cleanse(data->data(), data->size());
        if (!value) return make_error(what + ": " + value.message());
        if (value->empty()) return make_error("gcp_sm secret " + config::go_quote(name_) + " is empty");
        return value;
    }

private:
    result<outbound::http_client*> client_for(const std::string& url, std::string_view label) {
        auto& slot = clients_[url];
        if (!slot) {
            auto parsed = outbound::parse_base_url(url, label);
            if (!parsed) return parsed.err();
            auto client = outbound::http_client::create(std::move(*parsed));
            if (!client) return client.err();
            slot = std::move(*client);
        }
        return slot.get();
    }

    result<void> ensure_token(outbound::cancel_handle& cancel) {
        const auto now = std::chrono::system_clock::now();
        if (!token_.empty() && now + std::chrono::seconds(60) < token_expiry_) return ok();
        std::string path = credentials_file_;
        if (path.empty())
            if (const char* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS")) path = env;
        if (path.empty())
            return make_error("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS or credentials_file "
                              "(metadata-server credentials are not fetched by this build)");
        std::ifstream in(path, std::ios::binary);
        if (!in) return make_error("reading credentials file " + config::go_quote(path));
        std::ostringstream ss;
        ss << in.rdbuf();
        std::string text = std::move(ss).str();
        auto creds = gcp::parse_adc(text);
        OPENSSL_cleanse(text.data(), text.size());
        if (!creds) return creds.err();
        auto body = gcp::token_request_body(*creds, cloud_platform, now);
        if (!body) return body.err();
        auto token_url = std::string(creds->token_uri);
        const auto cut = token_url.find('/', token_url.find("://") + 3);
        const std::string base = cut == std::string::npos ? token_url : token_url.substr(0, cut);
        const std::string target = cut == std::string::npos ? "/" : token_url.substr(cut);
        auto client = client_for(base, "token_uri");
        if (!client) return client.err();
        outbound::http_request req;
        req.target = target;
        req.headers.add("Content-Type", "application/x-www-form-urlencoded");
        req.body = std::move(*body);
        auto reply = (*client)->send_blocking(req, remote_source::fetch_timeout, &cancel);
        OPENSSL_cleanse(req.body.data(), req.body.size());
        if (!reply) return reply.err();
        if (reply->status != 200) return make_error("token endpoint: " + aws_error_text(reply->status, reply->body));
        auto token = take_string(reply->body, {"access_token"});
        std::int64_t expires_in = 3600;
        boost::system::error_code ec;
        if (auto doc = boost::json::parse(reply->body, ec); !ec && doc.is_object())
            if (const auto* e = doc.get_object().if_contains("expires_in"); e && e->is_int64()) expires_in = e->get_int64();
        OPENSSL_cleanse(reply->body.data(), reply->body.size());
        if (!token) return make_error("token endpoint: " + token.message());
        if (!token_.empty()) OPENSSL_cleanse(token_.data(), token_.size());
        token_ = std::move(*token);
        token_expiry_ = now + std::chrono::seconds(expires_in);
        return ok();
    }

    std::string name_, credentials_file_, endpoint_;
    std::map<std::string, std::unique_ptr<outbound::http_client>> clients_;
    std::string token_;
    std::chrono::system_clock::time_point token_expiry_{};
};

}  // namespace

result<std::string> gcp_secret_version(std::string_view secret) {
    const auto parts = split(secret);
    const bool shape = (parts.size() == 4 || parts.size() == 6) && parts[0] == "projects" && parts[2] == "secrets" &&
                       (parts.size() == 4 || parts[4] == "versions");
    bool empty = false;
    for (auto p : parts) empty = empty || p.empty();
    if (!shape || empty)
        return make_error("secret " + config::go_quote(secret) +
                          " must be projects/PROJECT/secrets/SECRET or projects/PROJECT/secrets/SECRET/versions/VERSION");
    return parts.size() == 4 ? std::string(secret) + "/versions/latest" : std::string(secret);
}

std::unique_ptr<store_fetcher> make_gcp_sm_fetcher(std::string version_name, std::string credentials_file, std::string endpoint) {
    return std::make_unique<gcp_sm_fetcher>(std::move(version_name), std::move(credentials_file), std::move(endpoint));
}

}  // namespace iron::secrets
