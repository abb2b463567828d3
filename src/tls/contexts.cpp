// OpenSSL contexts: the MITM server side and the upstream client side.
#include "tls/contexts.hpp"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace iron::tls {

namespace {

struct x509_stack_deleter { void operator()(STACK_OF(X509)* p) const { sk_X509_free(p); } };

// The host_name entry of a ClientHello server_name extension body (RFC 6066 §3):
//   ServerNameList: uint16 length, then { uint8 type, uint16 length, bytes }...
// Empty view when absent or malformed.
std::string_view parse_server_name(const unsigned char* p, std::size_t len) {
    if (len < 2) return {};
    const std::size_t list_len = (std::size_t(p[0]) << 8) | p[1];
    if (list_len + 2 != len) return {};
    p += 2;
    len -= 2;
    while (len >= 3) {
        const unsigned type = p[0];
        const std::size_t n = (std::size_t(p[1]) << 8) | p[2];
        if (n > len - 3) return {};
        if (type == TLSEXT_NAMETYPE_host_name)
            return n ? std::string_view(reinterpret_cast<const char*>(p + 3), n) : std::string_view{};
        p += 3 + n;
        len -= 3 + n;
    }
    return {};
}

// Whether a psk_key_exchange_modes extension body (RFC 8446 §4.2.9: uint8 length, then one byte
// per mode) lists psk_dhe_ke, the only mode OpenSSL resumes with (psk_ke needs
// SSL_OP_ALLOW_NO_DHE_KEX, which we never set).
bool offers_psk_dhe_ke(const unsigned char* p, std::size_t len) {
    constexpr unsigned char psk_dhe_ke = 1;
    if (len < 1 || std::size_t(p[0]) + 1 != len) return false;
    for (std::size_t i = 1; i < len; ++i)
        if (p[i] == psk_dhe_ke) return true;
    return false;
}

// SSL ex_data slot marking a server SSL whose client cannot resume with a TLS 1.3 ticket. Only
// the address of `no_ticket_marker` is stored (never owned, never freed).
int no_ticket_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}
char no_ticket_marker;

// Runs at the start of every ClientHello (also the second one after a HelloRetryRequest), before
// OpenSSL's own SNI processing and before a certificate is chosen, so the leaf can be set here.
int on_client_hello(SSL* ssl, int* alert, void* arg) {
    auto* cache = static_cast<leaf_cache*>(arg);
    const unsigned char* ext = nullptr;
    std::size_t ext_len = 0;
    // A client that offers no psk_dhe_ke mode can never present a TLS 1.3 ticket (Go without a
    // ClientSessionCache, hey, many SDKs). RFC 8446 §4.2.9: servers SHOULD NOT send it one.
    const bool resumable = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk_kex_modes, &ext, &ext_len) == 1 &&
                           offers_psk_dhe_ke(ext, ext_len);
    SSL_set_ex_data(ssl, no_ticket_index(), resumable ? nullptr : &no_ticket_marker);
    std::string_view sni;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) == 1)
        sni = parse_server_name(ext, ext_len);
    if (sni.empty()) {
        // Without a name there is nothing to mint for (the Go proxy: "no SNI provided").
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    auto leaf = cache->get(sni);
    if (!leaf) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    // Chain [leaf, CA]: the CA is sent so that an intermediate CA works for clients that trust
    // only its root. override=1 replaces whatever an earlier ClientHello (HRR) installed.
    std::unique_ptr<STACK_OF(X509), x509_stack_deleter> chain(sk_X509_new_null());
    if (!chain || !sk_X509_push(chain.get(), cache->ca_cert()) ||
        SSL_use_cert_and_key(ssl, leaf->cert.get(), cache->leaf_key(), chain.get(), 1) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

// Runs after OpenSSL has parsed the SNI. The name was already checked in on_client_hello; saying
// OK (rather than the no-callback default, NOACK) acknowledges it and makes OpenSSL record it in
// the session, so SSL_get_servername still works on a resumed TLS 1.2 connection, which reports
// the session's name.
int on_servername(SSL*, int*, void*) { return SSL_TLSEXT_ERR_OK; }

// The client's list in its order of preference is ignored: we prefer "h2" (many streams on one
// connection, gRPC), then "http/1.1". A client offering neither gets no ALPN and speaks HTTP/1.1.
int on_alpn_select(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                   unsigned int in_len, void*) {
    for (std::string_view wanted : {std::string_view("h2"), std::string_view("http/1.1")}) {
        unsigned int i = 0;
        while (i < in_len) {
            const unsigned int n = in[i];
            if (n == 0 || n > in_len - i - 1) break;
            if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == wanted) {
                *out = in + i + 1;
                *out_len = static_cast<unsigned char>(n);
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + n;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

result<ssl_ctx_ptr> make_server_context(leaf_cache& cache) {
    ERR_clear_error();
    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return make_error("creating server TLS context: " + openssl_error_string());
    if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
        return make_error("setting minimum TLS version: " + openssl_error_string());
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Resumption (tickets are on by default) needs a session id context on the server side.
    static constexpr unsigned char sid_ctx[] = "iron-proxy";
    if (SSL_CTX_set_session_id_context(ctx.get(), sid_ctx, sizeof sid_ctx - 1) != 1)
        return make_error("setting session id context: " + openssl_error_string());
    // The cache is borrowed (the caller keeps it alive) and reaches the callback as its argument.
    // Never use SSL_CTX app data here: boost::asio::ssl::context owns that slot (its verify
    // callback) and deletes whatever it finds there.
    SSL_CTX_set_client_hello_cb(ctx.get(), on_client_hello, &cache);
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), on_servername);
    SSL_CTX_set_alpn_select_cb(ctx.get(), on_alpn_select, nullptr);
    // One TLS 1.3 session ticket per handshake instead of OpenSSL's two (each is a serialised,
    // encrypted and MACed session: ~7% of a full handshake here); enough for a client to resume.
    SSL_CTX_set_num_tickets(ctx.get(), 1);
    return ctx;
}

bool client_can_use_tickets(const SSL* ssl) {
    return SSL_get_ex_data(ssl, no_ticket_index()) != &no_ticket_marker;
}

result<ssl_ctx_ptr> make_client_context(const std::string& extra_ca_file) {
    ERR_clear_error();
    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return make_error("creating client TLS context: " + openssl_error_string());
    if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
        return make_error("setting minimum TLS version: " + openssl_error_string());
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    // The system store; OpenSSL itself honours SSL_CERT_FILE / SSL_CERT_DIR here. A missing
    // system store is not fatal (containers without ca-certificates plus an extra bundle).
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) ERR_clear_error();
    if (!extra_ca_file.empty()) {
        // Probe with fopen first: OpenSSL's text for a missing file is less clear than errno's.
        if (std::FILE* f = std::fopen(extra_ca_file.c_str(), "rb")) {
            std::fclose(f);
        } else {
            return make_error(extra_ca_file + ": cannot load CA bundle: " + std::strerror(errno));
        }
        if (SSL_CTX_load_verify_locations(ctx.get(), extra_ca_file.c_str(), nullptr) != 1)
            return make_error(extra_ca_file + ": cannot load CA bundle: " + openssl_error_string());
    }
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
    return ctx;
}

result<void> prepare_client_ssl(SSL* ssl, const std::string& host) {
    std::string name = host;
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty()) return make_error("TLS: empty upstream host name");

    if (is_ip_literal(name)) {
        // RFC 6066 forbids IP literals in SNI; the certificate must carry the IP as a SAN.
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
            return make_error("TLS: setting peer IP " + name + ": " + openssl_error_string());
        return ok();
    }
    if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
        return make_error("TLS: setting SNI " + name + ": " + openssl_error_string());
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, name.c_str()) != 1)
        return make_error("TLS: setting peer host " + name + ": " + openssl_error_string());
    return ok();
}

}  // namespace iron::tls
