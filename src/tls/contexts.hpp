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
// cert + chain + shared key on the SSL. No SNI => the handshake fails. ALPN: "h2" preferred, then
// "http/1.1". TLS 1.2–1.3, server-side session tickets. `cache` must outlive it (it reaches the
// callback as its argument, never through SSL_CTX app data). After the handshake the client's name is
// SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), exactly as sent (not normalised).
result<ssl_ctx_ptr> make_server_context(leaf_cache& cache);

// For an SSL of a make_server_context context, once its ClientHello has been read: whether the
// client can resume a TLS 1.3 session with a ticket, i.e. it offered psk_key_exchange_modes with
// psk_dhe_ke (RFC 8446 §4.2.9). Clients without a session cache (Go's default transport, hey,
// many SDKs) offer none, and a ticket sent to them (a serialised, encrypted, MACed session: ~7%
// of a handshake) is wasted. True for an SSL the callback never saw.
bool client_can_use_tickets(const SSL* ssl);

// Verifies peers against the system store (SSL_CERT_FILE / SSL_CERT_DIR replace it when set, as
// everywhere in OpenSSL) plus `extra_ca_file` if non-empty (unreadable => `<path>: cannot load CA
// bundle: ...`). TLS 1.2+, no renegotiation, client session cache on. Resumption is the caller's:
// keep SSL_get1_session, SSL_set_session next time, and SSL_shutdown before freeing (an SSL freed
// mid-connection marks its session not resumable).
result<ssl_ctx_ptr> make_client_context(const std::string& extra_ca_file);

// Per upstream connection, before SSL_connect: `host` (no port; "[v6]" brackets and one trailing
// dot tolerated) becomes the SNI and the name the peer certificate must match (no partial
// wildcards, as Go). IP literals get no SNI (RFC 6066) and are matched against IP SANs.
result<void> prepare_client_ssl(SSL* ssl, const std::string& host);

}  // namespace iron::tls
