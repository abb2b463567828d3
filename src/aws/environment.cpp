#include "aws/environment.hpp"

#include <cstdlib>

namespace iron::aws {
namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
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

}  // namespace iron::aws
