#include "aws/environment.hpp"

#include <cstdlib>
#include <fstream>

#include <openssl/crypto.h>

namespace iron::aws {
namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return std::string(s);
}

// The [profile] section of an INI-style credentials file.
result<credentials> from_shared_file(const std::string& path, const std::string& profile) {
    std::ifstream in(path);
    if (!in) return make_error("no AWS credentials");
    credentials c;
    std::string line;
    bool in_profile = false;
    while (std::getline(in, line)) {
        const std::string t = trim(line);
        if (t.empty() || t[0] == '#' || t[0] == ';') continue;
        if (t.front() == '[') {
            in_profile = t == "[" + profile + "]";
            continue;
        }
        if (!in_profile) continue;
        const auto eq = t.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = trim(std::string_view(t).substr(0, eq));
        std::string value = trim(std::string_view(t).substr(eq + 1));
        if (key == "aws_access_key_id") c.access_key_id = std::move(value);
        else if (key == "aws_secret_access_key") c.secret_access_key = std::move(value);
        else if (key == "aws_session_token") c.session_token = std::move(value);
        else if (!value.empty()) OPENSSL_cleanse(value.data(), value.size());
    }
    if (c.access_key_id.empty() || c.secret_access_key.empty())
        return make_error("shared credentials file " + path + " has no keys for profile " + profile);
    return c;
}

}  // namespace

result<std::string> resolve_region(std::string_view configured) {
    if (!configured.empty()) return std::string(configured);
    for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"})
        if (auto v = env(name); !v.empty()) return v;
    return make_error("no AWS region: set the source's region or AWS_REGION");
}

std::string resolve_endpoint(std::string_view env_suffix, std::string_view host_prefix, std::string_view region) {
    const std::string ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (ignore != "true" && ignore != "TRUE" && ignore != "1") {
        if (auto v = env(("AWS_ENDPOINT_URL_" + std::string(env_suffix)).c_str()); !v.empty()) return v;
        if (auto v = env("AWS_ENDPOINT_URL"); !v.empty()) return v;
    }
    const std::string domain = region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
    return "https://" + std::string(host_prefix) + "." + std::string(region) + "." + domain;
}

result<credentials> default_credentials() {
    credentials c{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
    if (!c.access_key_id.empty() && !c.secret_access_key.empty()) return c;
    std::string file = env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty() && !env("HOME").empty()) file = env("HOME") + "/.aws/credentials";
    std::string profile = env("AWS_PROFILE");
    if (profile.empty()) profile = "default";
    if (!file.empty()) {
        auto shared = from_shared_file(file, profile);
        if (shared) return shared;
        if (shared.message() != "no AWS credentials") return shared;
    }
    return make_error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a shared credentials file "
        "(container, instance-metadata and web-identity credentials are not fetched by this build)");
}

}  // namespace iron::aws
