#pragma once
// OpenSSL contexts: the MITM server side (leaf chosen by SNI through the leaf cache) and the
// upstream client side (system trust store + optional extra CA bundle, TLS 1.2+).
#include <memory>
#include <string>

#include <openssl/ssl.h>

#include "core/result.hpp"
#include "tls/leaf_cache.hpp"

namespace iron::tls {

struct ssl_ctx_deleter { void operator()(SSL_CTX* p) const { SSL_CTX_free(p); } };
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_deleter>;

// Installs a ClientHello callback that reads the SNI, fetches the leaf from `cache` and sets
// cert + chain + shared key on the SSL. No SNI => the handshake fails. ALPN: "http/1.1" only (h2
// comes with the HTTP/2 work). TLS 1.2–1.3, server-side session tickets. `cache` must outlive it.
result<ssl_ctx_ptr> make_server_context(leaf_cache& cache);

// Verifies peers against the system store, plus `extra_ca_file` if non-empty, plus SSL_CERT_FILE
// if set. TLS 1.2+, client session cache on.
result<ssl_ctx_ptr> make_client_context(const std::string& extra_ca_file);

}  // namespace iron::tls
