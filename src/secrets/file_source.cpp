#include "secrets/file_source.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <openssl/crypto.h>

#include "config/yaml_util.hpp"

namespace iron::secrets {

std::string path_basename(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    auto slash = path.rfind('/');
    if (slash == std::string_view::npos || path.size() == 1) return std::string(path);
    return std::string(path.substr(slash + 1));
}

file_source::file_source(std::string path, duration ttl, duration failure_ttl, std::string name, std::string json_key)
    : source(name.empty() ? path_basename(path) : std::move(name), std::move(json_key)),
      path_(std::move(path)),
      ttl_(ttl),
      failure_ttl_(failure_ttl > duration(0) ? failure_ttl : std::chrono::minutes(1)) {
    refresh();
    // A thread only when something can change without a SIGHUP: a TTL, or a first read that failed
    // (the file may appear later, e.g. a secrets sidecar that starts after us).
    if (ttl_ > duration(0) || !has_value()) {
        timer_ = std::jthread([this](std::stop_token st) { run(std::move(st)); });
    }
}

file_source::~file_source() {
    if (timer_.joinable()) {
        timer_.request_stop();
        timer_.join();
    }
}

result<std::string> file_source::fetch() const {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return make_error("reading secret file " + config::go_quote(path_) + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error("reading secret file " + config::go_quote(path_) + ": read error");
    std::string data = std::move(ss).str();
    if (!data.empty() && data.back() == '\n') {
        data.pop_back();
        if (!data.empty() && data.back() == '\r') data.pop_back();
    }
    if (data.empty()) return make_error("secret file " + config::go_quote(path_) + " is empty");
    return data;
}

file_source::duration file_source::next_delay() const {
    if (last_refresh_failed()) {
        if (!has_value()) return failure_ttl_;
        return ttl_ > duration(0) ? ttl_ / 2 : failure_ttl_;
    }
    return ttl_;  // 0 = no periodic refresh
}

void file_source::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        duration delay = next_delay();
        {
            std::unique_lock lock(mu_);
            // The predicate is only the stop request: the wait ends on timeout or on stop.
            if (delay > duration(0)) {
                cv_.wait_for(lock, stop, delay, [] { return false; });
            } else {
                cv_.wait(lock, stop, [] { return false; });
            }
        }
        if (stop.stop_requested()) return;
        refresh();
    }
}

}  // namespace iron::secrets
