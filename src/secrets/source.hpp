#pragma once
// Secret sources: where a real credential comes from. Shared by every transform
// that needs one (secrets today; hmac_sign, oauth_token, … later).
//
// Threading model: a source holds its last fetched value in an immutable snapshot published with an
// atomic shared_ptr swap. current() only loads that pointer, so the request path never blocks on
// I/O or on a lock; refresh() (which may read files) runs at build time, on SIGHUP/reload through
// pipeline::refresh(), and on the file source's own TTL timer thread.
//
// Secret hygiene: values are never part of an error string, a log line or an annotation; only the
// display name() is. Value buffers are wiped (OPENSSL_cleanse) when the last reference drops.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace iron::secrets {

// A fetched value. Shared so a request that loaded it keeps it alive across a concurrent refresh.
using value_ptr = std::shared_ptr<const std::string>;

class source {
public:
    virtual ~source() = default;
    source(const source&) = delete;
    source& operator=(const source&) = delete;

    // Display name for annotations and logs (env var name, file basename, "control_plane", or the
    // configured `name:`). Never the value.
    const std::string& name() const { return name_; }

    // The current value, or an "unavailable" error (the reason never contains the value).
    // Lock-free snapshot read; never performs I/O (a pending remote source is asked to start its
    // first fetch, which happens on its own thread). After one success, a failed refresh keeps
    // serving the last good value (rotation by rewriting a file must not fail requests).
    result<value_ptr> current() const;

    // Re-read the backing store and publish the result. May block on I/O: never call it on the
    // request path. Concurrent refreshes are serialised.
    void refresh();

    // What SIGHUP / reload asks of a source: re-read it now. Local sources do it on the calling
    // thread; a remote store's source wakes its own fetch thread instead (never blocking the caller).
    virtual void reload() { refresh(); }

    // Remote stores fetch on first demand: building never performs I/O. pending() is true while no
    // fetch has finished yet, so a request that needs the value should ask for it (demand()) and
    // wait for that fetch (secrets::await_fetched) rather than fail at once. Local sources read
    // at build and are never pending.
    virtual bool pending() const { return false; }
    virtual void demand() const {}

protected:
    source(std::string name, std::string json_key);
    // Read the raw value. Runs only inside refresh(). Errors must not contain the value.
    virtual result<std::string> fetch() const = 0;
    // Did the last refresh fail (used by the file source's retry timer)?
    bool last_refresh_failed() const { return last_failed_.load(std::memory_order_relaxed); }
    bool has_value() const;

private:
    struct snapshot {
        value_ptr value;    // null while no fetch ever succeeded
        std::string error;  // why the last fetch failed (empty after success)
    };

    std::string name_;
    std::string json_key_;  // optional: the value is a JSON object, use this string field
    std::atomic<std::shared_ptr<const snapshot>> state_;
    std::mutex refresh_mu_;
    std::atomic<bool> last_failed_{false};
};

// A string whose buffer is wiped when the last reference goes away.
value_ptr make_value(std::string v);

// Extract the top-level string field `key` of a JSON object held in `text` (the `json_key`
// option). Errors name the key only.
result<std::string> extract_json_key(std::string_view text, std::string_view key);

// {type: env, var: X}: the process environment at refresh time. Empty or unset => unavailable.
class env_source final : public source {
public:
    explicit env_source(std::string var, std::string name = {}, std::string json_key = {});

protected:
    result<std::string> fetch() const override;

private:
    std::string var_;
};

// {type: control_plane, value: V}: an inline value (the managed-mode delivery form).
class static_source final : public source {
public:
    explicit static_source(std::string value, std::string name = {}, std::string json_key = {});
    ~static_source() override;

protected:
    result<std::string> fetch() const override;

private:
    std::string value_;
};

}  // namespace iron::secrets
