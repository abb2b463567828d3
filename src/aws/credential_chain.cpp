#include "aws/credential_chain.hpp"

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>

#include "aws/environment.hpp"
#include "core/percent.hpp"

namespace iron::aws {
namespace {

namespace json = boost::json;
using std::chrono::seconds;

constexpr seconds sts_timeout{10};
constexpr seconds container_timeout{5};
constexpr seconds imds_timeout{2};  // per call: off EC2 nothing answers, and the chain must not hang

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

bool env_true(const char* name) {
    const std::string v = env(name);
    return v == "true" || v == "TRUE" || v == "True" || v == "1";
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return std::string(s);
}

void wipe(std::string& s) {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

// A whole file, or nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// The text of the first <tag>…</tag> inside `xml`, entity-decoded; nullopt when absent.
std::optional<std::string> xml_text(std::string_view xml, std::string_view tag) {
    const std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
    const auto b = xml.find(open);
    if (b == std::string_view::npos) return std::nullopt;
    const auto e = xml.find(close, b + open.size());
    if (e == std::string_view::npos) return std::nullopt;
    std::string_view raw = xml.substr(b + open.size(), e - b - open.size());
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '&') {
            out += raw[i];
            continue;
        }
        static constexpr std::pair<std::string_view, char> entities[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        bool matched = false;
        for (const auto& [name, c] : entities) {
            if (raw.substr(i).starts_with(name)) {
                out += c;
                i += name.size() - 1;
                matched = true;
                break;
            }
        }
        if (!matched) out += '&';
    }
    return trim(out);
}

// "http://host:port/path?query" → the client's base URL and the request target.
struct split_url {
    std::string base, target;
};
split_url split(std::string_view url) {
    const auto scheme = url.find("://");
    const auto slash = scheme == std::string_view::npos ? std::string_view::npos : url.find_first_of("/?", scheme + 3);
    if (slash == std::string_view::npos) return {std::string(url), "/"};
    std::string target(url.substr(slash));
    if (target.front() == '?') target.insert(target.begin(), '/');
    return {std::string(url.substr(0, slash)), target};
}

result<outbound::http_reply> call(std::string_view url, outbound::http_request req, std::chrono::nanoseconds timeout,
                                  outbound::cancel_handle& cancel) {
    const split_url parts = split(url);
    auto base = outbound::parse_base_url(parts.base, "endpoint");
    if (!base) return base.err();
    auto client = outbound::http_client::create(std::move(*base));
    if (!client) return client.err();
    req.target = parts.target;
    return (*client)->send_blocking(req, timeout, &cancel);
}

// The links, each answering only when its settings are present (nullopt: not configured).
using link_result = std::optional<result<timed_credentials>>;

link_result from_environment() {
    credentials c{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
    if (c.access_key_id.empty() || c.secret_access_key.empty()) return std::nullopt;
    return timed_credentials{std::move(c), std::nullopt, "environment"};
}

std::string sts_endpoint(std::string region) {
    if (region.empty()) region = env("AWS_REGION");
    if (region.empty()) region = env("AWS_DEFAULT_REGION");
    if (!region.empty()) return resolve_endpoint("STS", "sts", region);
    const std::string configured = resolve_endpoint("STS", "sts", "us-east-1");
    return configured == "https://sts.us-east-1.amazonaws.com" ? "https://sts.amazonaws.com" : configured;
}

link_result from_web_identity(const chain_settings& s, outbound::cancel_handle& cancel) {
    const std::string token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), role = env("AWS_ROLE_ARN");
    if (token_file.empty() || role.empty()) return std::nullopt;
    auto token = read_file(token_file);
    if (!token) return make_error("web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE " + token_file);
    std::string session = env("AWS_ROLE_SESSION_NAME");
    if (session.empty()) session = "iron-proxy-" + std::to_string(std::time(nullptr));
    outbound::http_request req;
    req.method = "POST";
    req.headers.add("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    req.headers.add("Accept", "text/xml");
    req.body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + core::percent_encode(role) +
               "&RoleSessionName=" + core::percent_encode(session) +
               "&WebIdentityToken=" + core::percent_encode(trim(*token));
    wipe(*token);
    const std::string endpoint = sts_endpoint(s.region);
    auto reply = call(endpoint, std::move(req), sts_timeout, cancel);
    if (!reply) return make_error("web identity: STS " + endpoint + ": " + reply.message());
    if (reply->status != 200) return make_error("web identity: STS AssumeRoleWithWebIdentity: " + sts_error_text(reply->status, reply->body));
    auto creds = parse_assume_role_reply(reply->body);
    wipe(reply->body);
    if (!creds) return make_error("web identity: " + creds.message());
    creds->provider = "web_identity";
    return creds;
}

link_result from_shared_file() {
    std::string file = env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty() && !env("HOME").empty()) file = env("HOME") + "/.aws/credentials";
    if (file.empty()) return std::nullopt;
    auto text = read_file(file);
    if (!text) return std::nullopt;
    std::string profile = env("AWS_PROFILE");
    if (profile.empty()) profile = "default";
    auto c = parse_shared_credentials(*text, profile);
    wipe(*text);
    if (!c) return std::nullopt;
    return timed_credentials{std::move(*c), std::nullopt, "shared_file"};
}

link_result from_container(outbound::cancel_handle& cancel) {
    std::string url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (const std::string rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); !rel.empty())
        url = "http://169.254.170.2" + rel;
    if (url.empty()) return std::nullopt;
    const split_url parts = split(url);
    auto base = outbound::parse_base_url(parts.base, "container credentials URI");
    if (!base) return make_error("container: " + base.message());
    if (!base->tls && !container_host_allowed(base->host))
        return make_error("container: AWS_CONTAINER_CREDENTIALS_FULL_URI host " + base->host +
                          " is not a loopback or the ECS/EKS credentials address (use https)");
    outbound::http_request req;
    req.method = "GET";
    req.headers.add("Accept", "application/json");
    std::string auth;
    if (const std::string f = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); !f.empty()) {
        auto t = read_file(f);
        if (!t) return make_error("container: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + f);
        auth = trim(*t);
        wipe(*t);
    } else {
        auth = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    if (auth.find_first_of("\r\n") != std::string::npos) return make_error("container: the authorization token holds a line break");
    if (!auth.empty()) req.headers.add("Authorization", std::move(auth));
    auto reply = call(url, std::move(req), container_timeout, cancel);
    if (!reply) return make_error("container: " + reply.message());
    if (reply->status != 200) return make_error("container: endpoint answered " + std::to_string(reply->status));
    auto creds = parse_credentials_json(reply->body);
    wipe(reply->body);
    if (!creds) return make_error("container: " + creds.message());
    creds->provider = "container";
    return creds;
}

result<std::string> imds_get(const std::string& endpoint, const std::string& path, const std::string& token,
                             outbound::cancel_handle& cancel) {
    outbound::http_request req;
    req.method = "GET";
    req.headers.add("X-aws-ec2-metadata-token", token);
    auto reply = call(endpoint + path, std::move(req), imds_timeout, cancel);
    if (!reply) return reply.err();
    if (reply->status != 200) return make_error("GET " + path + " answered " + std::to_string(reply->status));
    return std::move(reply->body);
}

link_result from_imds(outbound::cancel_handle& cancel) {
    if (env_true("AWS_EC2_METADATA_DISABLED")) return std::nullopt;
    std::string endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (endpoint.empty()) endpoint = "http://169.254.169.254";
    while (endpoint.ends_with('/')) endpoint.pop_back();
    outbound::http_request put;
    put.method = "PUT";
    put.headers.add("X-aws-ec2-metadata-token-ttl-seconds", "21600");
    auto token = call(endpoint + "/latest/api/token", std::move(put), imds_timeout, cancel);
    if (!token) return make_error("no AWS credentials found (environment, web identity, shared file, container; "
                                  "instance metadata " + endpoint + ": " + token.message() + ")");
    if (token->status != 200) return make_error("imds: token request answered " + std::to_string(token->status));
    const std::string base = "/latest/meta-data/iam/security-credentials/";
    auto roles = imds_get(endpoint, base, token->body, cancel);
    if (!roles) return make_error("imds: " + roles.message());
    const std::string role = trim(std::string_view(*roles).substr(0, roles->find('\n')));
    if (role.empty() || role.find_first_of("/?#% ") != std::string::npos) return make_error("imds: no instance role");
    auto body = imds_get(endpoint, base + role, token->body, cancel);
    wipe(token->body);
    if (!body) return make_error("imds: " + body.message());
    auto creds = parse_credentials_json(*body);
    wipe(*body);
    if (!creds) return make_error("imds: " + creds.message());
    creds->provider = "imds";
    return creds;
}

std::string json_string(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_string()) return {};
    return std::string(v->get_string());
}

}  // namespace

result<timed_credentials> resolve_default_chain(const chain_settings& settings, outbound::cancel_handle& cancel) {
    if (auto r = from_environment()) return std::move(*r);
    if (auto r = from_web_identity(settings, cancel)) return std::move(*r);
    if (auto r = from_shared_file()) return std::move(*r);
    if (auto r = from_container(cancel)) return std::move(*r);
    if (auto r = from_imds(cancel)) return std::move(*r);
    return make_error("no AWS credentials found (environment, web identity, shared file, container; instance metadata disabled)");
}

result<credentials> parse_shared_credentials(std::string_view text, std::string_view profile) {
    credentials c;
    bool in_profile = false, seen = false;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        const std::string t = trim(text.substr(start, nl - start));
        start = nl + 1;
        if (t.empty() || t[0] == '#' || t[0] == ';') continue;
        if (t.front() == '[') {
            in_profile = t.back() == ']' && trim(std::string_view(t).substr(1, t.size() - 2)) == profile;
            seen = seen || in_profile;
            continue;
        }
        const auto eq = t.find('=');
        if (!in_profile || eq == std::string::npos) continue;
        const std::string key = trim(std::string_view(t).substr(0, eq));
        std::string value = trim(std::string_view(t).substr(eq + 1));
        if (key == "aws_access_key_id") c.access_key_id = std::move(value);
        else if (key == "aws_secret_access_key") c.secret_access_key = std::move(value);
        else if (key == "aws_session_token") c.session_token = std::move(value);
        else wipe(value);
    }
    if (!seen) return make_error("profile " + std::string(profile) + " not found");
    if (c.access_key_id.empty() || c.secret_access_key.empty())
        return make_error("profile " + std::string(profile) + " has no aws_access_key_id / aws_secret_access_key");
    return c;
}

result<timed_credentials> parse_credentials_json(std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) return make_error("credentials reply is not a JSON object");
    const auto& o = v.get_object();
    if (const std::string code = json_string(o, "Code"); !code.empty() && code != "Success")
        return make_error("credentials reply says Code " + code);
    timed_credentials out;
    out.creds = {json_string(o, "AccessKeyId"), json_string(o, "SecretAccessKey"), json_string(o, "Token")};
    if (out.creds.access_key_id.empty() || out.creds.secret_access_key.empty())
        return make_error("credentials reply has no AccessKeyId / SecretAccessKey");
    if (const std::string exp = json_string(o, "Expiration"); !exp.empty()) {
        out.expiration = parse_iso8601(exp);
        if (!out.expiration) return make_error("credentials reply has an unreadable Expiration");
    }
    return out;
}

result<timed_credentials> parse_assume_role_reply(std::string_view xml) {
    const auto at = xml.find("<Credentials>");
    if (at == std::string_view::npos) return make_error("STS reply has no Credentials");
    const std::string_view c = xml.substr(at);
    timed_credentials out;
    out.creds.access_key_id = xml_text(c, "AccessKeyId").value_or("");
    out.creds.secret_access_key = xml_text(c, "SecretAccessKey").value_or("");
    out.creds.session_token = xml_text(c, "SessionToken").value_or("");
    if (out.creds.access_key_id.empty() || out.creds.secret_access_key.empty() || out.creds.session_token.empty())
        return make_error("STS reply lacks AccessKeyId, SecretAccessKey or SessionToken");
    const auto exp = xml_text(c, "Expiration");
    if (exp) out.expiration = parse_iso8601(*exp);
    if (!out.expiration) return make_error("STS reply has no readable Expiration");
    return out;
}

std::string sts_error_text(int status, std::string_view xml) {
    const auto code = xml_text(xml, "Code"), message = xml_text(xml, "Message");
    std::string out = "status " + std::to_string(status);
    if (code) out += ": " + *code;
    if (message) out += ": " + message->substr(0, 200);
    return out;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view t) {
    int y, mo, d, h, mi, s, consumed = 0;
    const std::string text(t);
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6) return std::nullopt;
    std::string_view rest = std::string_view(text).substr(static_cast<std::size_t>(consumed));
    if (rest.starts_with('.')) {
        rest.remove_prefix(1);
        while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') rest.remove_prefix(1);
    }
    long offset = 0;
    if (rest == "Z" || rest == "z") {
        offset = 0;
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        const int oh = std::atoi(std::string(rest.substr(1, 2)).c_str()), om = std::atoi(std::string(rest.substr(4, 2)).c_str());
        offset = (rest[0] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    } else {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    const std::time_t utc = timegm(&tm);
    if (utc == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(utc - offset);
}

bool container_host_allowed(std::string_view host) {
    if (host == "localhost" || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23")
        return true;
    return host.starts_with("127.") && host.find_first_not_of("0123456789.") == std::string_view::npos;
}

}  // namespace iron::aws
