#pragma once
// The one test CA of the unit tests: a CA made by the proxy's own generate_ca into a private temp
// directory, the MITM leaf cache minting for it, and SSL contexts on either side of a handshake
// (a server minting a leaf per SNI, a client trusting the CA). Header-only: the unit-test glob
// compiles only *_test.cpp files.
//
// Lifetimes: a server context's ClientHello callback reaches the leaf cache, so every server
// context (and every stream using one) must go before the test_ca that made it.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include "support/temp_dir.hpp"
#include "tls/ca.hpp"
#include "tls/contexts.hpp"
#include "tls/leaf_cache.hpp"

namespace iron::test {

class test_ca {
public:
    // A failure to make the CA is reported as a test failure; ok() says whether it worked.
    explicit test_ca(std::string name = "Iron Unit Test CA", std::string alg = "ecdsa-p256",
                     std::size_t cache_capacity = 100) {
        tls::generate_ca_options opts;
        opts.outdir = dir_.path;
        opts.name = std::move(name);
        opts.alg = std::move(alg);
        auto gen = tls::generate_ca(opts);
        if (!gen) {
            ADD_FAILURE() << "generate_ca: " << gen.message();
            return;
        }
        cert_path_ = gen->cert_path;
        key_path_ = gen->key_path;
        auto ca = tls::certificate_authority::load(cert_path_, key_path_);
        if (!ca) {
            ADD_FAILURE() << "load CA: " << ca.message();
            return;
        }
        ca_ = *ca;
        leaves_ = std::make_unique<tls::leaf_cache>(ca_, cache_capacity, std::chrono::hours(24));
    }
    test_ca(const test_ca&) = delete;
    test_ca& operator=(const test_ca&) = delete;

    bool ok() const { return ca_ != nullptr; }
    const std::string& cert_path() const { return cert_path_; }
    const std::string& key_path() const { return key_path_; }
    // Its directory, for tests that write more files next to the CA.
    const temp_dir& dir() const { return dir_; }
    const std::shared_ptr<const tls::certificate_authority>& authority() const { return ca_; }
    tls::leaf_cache& leaves() { return *leaves_; }

    // A leaf for `name`, chained to this CA (nullptr for a name the cache refuses).
    std::shared_ptr<const tls::leaf> mint(std::string_view name) { return leaves_->get(name); }

    // The MITM server side: the leaf for whatever SNI the client sends, ALPN h2 then http/1.1.
    tls::ssl_ctx_ptr server_context() { return must(tls::make_server_context(*leaves_), "server context"); }
    // A client verifying peers against this CA (and the system store).
    tls::ssl_ctx_ptr client_context() const { return must(tls::make_client_context(cert_path_), "client context"); }

    // The same, as the Asio contexts the proxy's streams take.
    boost::asio::ssl::context asio_server_context() { return boost::asio::ssl::context(server_context().release()); }
    boost::asio::ssl::context asio_client_context() const {
        return boost::asio::ssl::context(client_context().release());
    }

private:
    static tls::ssl_ctx_ptr must(result<tls::ssl_ctx_ptr> r, const char* what) {
        if (!r) {
            ADD_FAILURE() << what << ": " << r.message();
            return nullptr;
        }
        return std::move(*r);
    }

    temp_dir dir_;
    std::string cert_path_, key_path_;
    std::shared_ptr<const tls::certificate_authority> ca_;
    std::unique_ptr<tls::leaf_cache> leaves_;
};

}  // namespace iron::test
