#pragma once
// {type: file, path: P, ttl?: "30s", failure_ttl?: "1m"}: a secret kept in a file (Kubernetes /
// Docker secrets, a vault agent sink, …). Rotation = rewrite the file; the proxy_value the sandbox
// uses never changes.
//
// Reads happen at construction (pipeline build, i.e. startup or reload), on refresh() (SIGHUP), and
// on a small timer thread owned by the source: every `ttl` when one is set, and after a failure
// (every `failure_ttl` before the first success, every ttl/2 after one, as in the Go proxy). The
// request path only reads the published snapshot.
//
// Content rule: the file's bytes with ONE trailing newline ("\n" or "\r\n") removed, because
// `echo secret > file` and most editors add one and no real credential ends in a newline. (The Go
// proxy uses the bytes exactly; a file written with `printf` reads the same in both.) An empty
// result is "unavailable".
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "secrets/source.hpp"

namespace iron::secrets {

class file_source final : public source {
public:
    using duration = std::chrono::nanoseconds;

    // Reads the file once. `name` defaults to the path's basename. ttl == 0: re-read only on
    // refresh(). failure_ttl == 0 means the default (1 minute).
    file_source(std::string path, duration ttl, duration failure_ttl, std::string name = {},
                std::string json_key = {});
    ~file_source() override;  // stops and joins the timer thread

    const std::string& path() const { return path_; }

protected:
    result<std::string> fetch() const override;

private:
    void run(std::stop_token stop);
    duration next_delay() const;

    std::string path_;
    duration ttl_;
    duration failure_ttl_;
    std::mutex mu_;
    std::condition_variable_any cv_;
    std::jthread timer_;  // last member: started after everything above is initialised
};

// "/run/secrets/openai_key" -> "openai_key"; a path ending in '/' keeps its last segment.
std::string path_basename(std::string_view path);

}  // namespace iron::secrets
