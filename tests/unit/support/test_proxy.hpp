#pragma once
// The runtime of one proxy worker, built for a unit test the way app.cpp builds it (build_runtime
// and make_workers): the config from YAML through the real loader, the transform pipeline through
// the registry, a real audit sink writing to a temp file, and a resolver, dialer and upstream pools
// on the test's io_context. The deny list lets loopback through so that in-process origins on
// 127.0.0.1 can be dialed. Every audit record the sink writes is also kept in memory (records()).
// Header-only: the unit-test glob compiles only *_test.cpp files.
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include "audit/observer.hpp"
#include "audit/record.hpp"
#include "audit/sink.hpp"
#include "config/config.hpp"
#include "core/cidr.hpp"
#include "h2/client_pool.hpp"
#include "http/upstream.hpp"
#include "net/dialer.hpp"
#include "net/live_connections.hpp"
#include "net/resolver.hpp"
#include "runtime/state.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"
#include "transforms/registry.hpp"

namespace iron::test {

// Every record the sink writes, as the sink saw it.
class record_log final : public audit::record_observer {
public:
    void on_record(const audit::record& r) noexcept override {
        std::lock_guard lock(m_);
        records_.push_back(r);
    }
    std::vector<audit::record> records() const {
        std::lock_guard lock(m_);
        return records_;
    }

private:
    mutable std::mutex m_;
    std::vector<audit::record> records_;
};

// An allowlist letting only 127.0.0.1 through (literal addresses match `cidrs`).
inline constexpr const char* allow_loopback =
    "transforms:\n"
    "  - name: allowlist\n"
    "    config:\n"
    "      domains: ['allowed.test']\n"
    "      cidrs: ['127.0.0.1/32']\n";

struct proxy_options {
    std::string transforms = allow_loopback;  // a whole `transforms:` section
    std::string proxy_keys;                   // more lines under `proxy:`, indented two spaces
    std::string tls_mode = "mitm";
    test_ca* ca = nullptr;  // MITM leaves minted by it, and upstream certificates verified against it
};

class test_proxy {
public:
    test_proxy(boost::asio::io_context& io, const proxy_options& opts = {}) {
        const std::string yaml = "dns:\n  enabled: false\n"
                                 "tls:\n  mode: " + opts.tls_mode + "\n  ca_cert: /unused/ca.crt\n  ca_key: /unused/ca.key\n"
                                 "proxy:\n  upstream_deny_cidrs: ['169.254.169.254/32']\n" + opts.proxy_keys +
                                 opts.transforms;
        auto cfg = config::load_string(yaml, "test.yaml");
        if (!cfg) {
            ADD_FAILURE() << "config: " << cfg.message() << "\n" << yaml;
            return;
        }
        build_shared(*cfg, opts);
        build_worker(io, *cfg);
    }
    test_proxy(const test_proxy&) = delete;
    test_proxy& operator=(const test_proxy&) = delete;

    bool ok() const { return shared && pool_; }

    std::shared_ptr<runtime::shared_state> shared;
    runtime::worker_state worker;

    // A client connection as a listener would describe it.
    runtime::connection_info connection(bool tls = false, std::string sni = {}) {
        return runtime::connection_info{shared, &worker, "127.0.0.1:40000", std::move(sni), tls, std::nullopt, ""};
    }

    std::vector<audit::record> records() const { return log_->records(); }
    // The audit file, line by line (what an operator would read).
    std::vector<std::string> audit_lines() const {
        std::ifstream in(dir_ / "audit.jsonl");
        std::vector<std::string> out;
        for (std::string l; std::getline(in, l);) out.push_back(l);
        return out;
    }
    http::upstream_pool& pool() { return *pool_; }
    net::live_connections& live() { return live_; }

private:
    void build_shared(const config::config& cfg, const proxy_options& opts) {
        auto s = std::make_shared<runtime::shared_state>();
        s->proxy = cfg.proxy;
        s->tls_mode = cfg.tls.mode;
        auto pipe = transforms::build_pipeline(cfg.transforms, cfg.source);
        if (!pipe) {
            ADD_FAILURE() << "pipeline: " << pipe.message();
            return;
        }
        auto policy = std::make_shared<runtime::request_policy>();
        policy->pipeline = std::move(*pipe);
        policy->max_request_body_bytes = cfg.proxy.max_request_body_bytes;
        policy->forward_oversize_body = cfg.proxy.oversize_body == "forward";
        s->policies = std::make_shared<runtime::policy_slot>(std::move(policy));
        if (opts.ca) s->server_tls = std::make_shared<boost::asio::ssl::context>(opts.ca->asio_server_context());
        auto client = tls::make_client_context(opts.ca ? opts.ca->cert_path() : "");
        if (!client) {
            ADD_FAILURE() << "client context: " << client.message();
            return;
        }
        s->client_tls = std::make_shared<boost::asio::ssl::context>(client->release());
        log_ = std::make_shared<record_log>();
        auto sink = audit::sink::open(dir_ / "audit.jsonl", log_);
        if (!sink) {
            ADD_FAILURE() << "audit sink: " << sink.message();
            return;
        }
        s->audit = std::move(*sink);
        shared = std::move(s);
    }

    void build_worker(boost::asio::io_context& io, const config::config& cfg) {
        if (!shared) return;
        auto deny = core::deny_list::parse(cfg.proxy.upstream_deny_cidrs);
        auto res = net::resolver::create(io.get_executor(), "");
        if (!deny || !res) {
            ADD_FAILURE() << "deny list or resolver";
            return;
        }
        resolver_ = std::move(*res);
        dialer_ = std::make_unique<net::dialer>(
            *resolver_, *deny, std::chrono::duration_cast<std::chrono::milliseconds>(cfg.proxy.upstream_connect_timeout));
        http::upstream_timeouts timeouts;
        timeouts.idle = cfg.proxy.upstream_idle_timeout;
        router_ = std::make_unique<upstream_proxy::router>(*dialer_, nullptr, cfg.proxy.upstream_connect_timeout);
        pool_ = std::make_unique<http::upstream_pool>(*router_, *shared->client_tls, timeouts);
        h2_pool_ = std::make_unique<h2::client_pool>(io.get_executor(), *pool_, timeouts.idle);
        worker = runtime::worker_state{dialer_.get(), router_.get(), pool_.get(), h2_pool_.get(), &live_};
    }

    temp_dir dir_;
    std::shared_ptr<record_log> log_;
    net::live_connections live_;  // before the pools: exchanges ask it whether they were cut
    std::unique_ptr<net::resolver> resolver_;
    std::unique_ptr<net::dialer> dialer_;
    std::unique_ptr<upstream_proxy::router> router_;  // after dialer_, which it borrows
    std::unique_ptr<http::upstream_pool> pool_;
    std::unique_ptr<h2::client_pool> h2_pool_;  // after pool_, which it borrows
};

}  // namespace iron::test
