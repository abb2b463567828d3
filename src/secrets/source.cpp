#include "secrets/source.hpp"

#include <cstdlib>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>

#include "config/yaml_util.hpp"
#include "core/log.hpp"
#include "metrics/metrics.hpp"

namespace iron::secrets {

value_ptr make_value(std::string v) {
    auto* owned = new std::string(std::move(v));
    return value_ptr(owned, [](const std::string* s) {
        // Wipe before freeing so a freed page never holds a credential.
        if (!s->empty()) OPENSSL_cleanse(const_cast<char*>(s->data()), s->size());
        delete s;
    });
}

result<std::string> extract_json_key(std::string_view text, std::string_view key) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    // The parser's own message could quote input bytes, so only fixed texts are used here.
    if (ec || !v.is_object()) return make_error("json_key " + config::go_quote(key) + ": value is not a JSON object");
    const auto& obj = v.get_object();
    auto it = obj.find(key);
    if (it == obj.end()) return make_error("json_key " + config::go_quote(key) + ": key not found");
    if (!it->value().is_string()) return make_error("json_key " + config::go_quote(key) + ": value is not a string");
    std::string out(it->value().get_string());
    // Wipe the parsed copy as well.
    auto& s = const_cast<boost::json::string&>(it->value().get_string());
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    return out;
}

source::source(std::string name, std::string json_key)
    : name_(std::move(name)), json_key_(std::move(json_key)) {
    state_.store(std::make_shared<const snapshot>(snapshot{nullptr, "not fetched yet"}));
}

result<value_ptr> source::current() const {
    auto s = state_.load();
    if (s->value) return s->value;
    if (pending()) demand();
    return make_error("secret " + config::go_quote(name_) + " unavailable: " + s->error);
}

bool source::has_value() const { return state_.load()->value != nullptr; }

void source::refresh() {
    std::lock_guard lock(refresh_mu_);
    auto fetched = fetch();
    if (fetched && !json_key_.empty()) {
        auto inner = extract_json_key(*fetched, json_key_);
        OPENSSL_cleanse(fetched->data(), fetched->size());
        fetched = std::move(inner);
    }
    auto old = state_.load();
    if (!fetched) {
        last_failed_.store(true, std::memory_order_relaxed);
        metrics::secret_fetch_error();
        log::warn("secret refresh failed", {{"secret", name_}, {"error", fetched.message()}});
        // Stale-on-error: keep serving the previous value if there is one.
        state_.store(std::make_shared<const snapshot>(snapshot{old->value, old->value ? "" : fetched.message()}));
        return;
    }
    last_failed_.store(false, std::memory_order_relaxed);
    if (old->value && *old->value == *fetched) {
        OPENSSL_cleanse(fetched->data(), fetched->size());
        return;  // unchanged: keep the same buffer, no log noise
    }
    if (old->value) log::info("secret value changed", {{"secret", name_}});
    state_.store(std::make_shared<const snapshot>(snapshot{make_value(std::move(*fetched)), ""}));
}

// ---------------------------------------------------------------------------------------------

env_source::env_source(std::string var, std::string name, std::string json_key)
    : source(name.empty() ? var : std::move(name), std::move(json_key)), var_(std::move(var)) {}

result<std::string> env_source::fetch() const {
    const char* v = std::getenv(var_.c_str());
    if (v == nullptr || *v == '\0') return make_error("env var " + config::go_quote(var_) + " is not set or empty");
    return std::string(v);
}

static_source::static_source(std::string value, std::string name, std::string json_key)
    : source(name.empty() ? "control_plane" : std::move(name), std::move(json_key)), value_(std::move(value)) {}

static_source::~static_source() {
    if (!value_.empty()) OPENSSL_cleanse(value_.data(), value_.size());
}

result<std::string> static_source::fetch() const {
    if (value_.empty()) return make_error("value is empty");
    return value_;
}

}  // namespace iron::secrets
