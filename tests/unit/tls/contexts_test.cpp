#include "tls/contexts.hpp"
#include "support/temp_dir.hpp"
#include "support/test_ca.hpp"

#include <fstream>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace iron::tls {
namespace {

using test::temp_dir;

struct ssl_free { void operator()(SSL* p) const { SSL_free(p); } };
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;
struct session_free { void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); } };
using session_ptr = std::unique_ptr<SSL_SESSION, session_free>;

std::string common_name(X509* cert) {
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

// A client/server SSL pair joined by an in-memory BIO pair.
struct tls_pair {
    ssl_ptr client, server;
    tls_pair(SSL_CTX* client_ctx, SSL_CTX* server_ctx) : client(SSL_new(client_ctx)), server(SSL_new(server_ctx)) {
        BIO *c = nullptr, *s = nullptr;
        BIO_new_bio_pair(&c, 0, &s, 0);
        SSL_set_bio(client.get(), c, c);
        SSL_set_bio(server.get(), s, s);
        SSL_set_connect_state(client.get());
        SSL_set_accept_state(server.get());
    }

    // Steps both sides until both finish or one fails. True when both completed.
    bool handshake() {
        bool client_done = false, server_done = false;
        for (int i = 0; i < 100 && !(client_done && server_done); ++i) {
            if (!client_done) {
                const int r = SSL_do_handshake(client.get());
                if (r == 1) client_done = true;
                else if (!want_io(client.get(), r)) return false;
            }
            if (!server_done) {
                const int r = SSL_do_handshake(server.get());
                if (r == 1) server_done = true;
                else if (!want_io(server.get(), r)) return false;
            }
        }
        // Let the client consume TLS 1.3 NewSessionTicket messages sent after the handshake.
        char buf[1];
        SSL_read(client.get(), buf, sizeof buf);
        ERR_clear_error();
        return client_done && server_done;
    }

    static bool want_io(SSL* ssl, int r) {
        const int e = SSL_get_error(ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
};

class contexts_test : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(ca_.ok());
        server_ = ca_.server_context();
        client_ = ca_.client_context();
        cache_ = &ca_.leaves();
    }

    test::test_ca ca_{"Contexts Test CA"};
    leaf_cache* cache_ = nullptr;
    ssl_ctx_ptr server_, client_;
};

TEST_F(contexts_test, handshake_with_sni_serves_a_leaf_chained_to_the_ca) {
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "a.test"));
    ASSERT_TRUE(p.handshake()) << ERR_error_string(ERR_get_error(), nullptr);
    EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
    EXPECT_EQ(SSL_version(p.client.get()), TLS1_3_VERSION);

    X509* peer = SSL_get0_peer_certificate(p.client.get());
    ASSERT_NE(peer, nullptr);
    EXPECT_EQ(common_name(peer), "a.test");
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(p.client.get());  // leaf + what was sent
    ASSERT_NE(chain, nullptr);
    ASSERT_EQ(sk_X509_num(chain), 2);
    EXPECT_EQ(X509_cmp(sk_X509_value(chain, 1), cache_->ca_cert()), 0);

    // The app reads the client's name after the handshake the ordinary way.
    const char* sni = SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name);
    ASSERT_NE(sni, nullptr);
    EXPECT_STREQ(sni, "a.test");
    EXPECT_EQ(cache_->mints(), 1u);
    // The app-data slot stays free: boost::asio::ssl::context owns it and deletes what it finds.
    EXPECT_EQ(SSL_CTX_get_app_data(server_.get()), nullptr);

    // No ALPN offered => none selected.
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(p.server.get(), &proto, &len);
    EXPECT_EQ(len, 0u);
}

TEST_F(contexts_test, sni_is_reported_as_sent_but_the_leaf_is_shared) {
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "A.Test."));
    ASSERT_TRUE(p.handshake());
    EXPECT_STREQ(SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name), "A.Test");
    EXPECT_EQ(common_name(SSL_get0_peer_certificate(p.client.get())), "a.test");
    EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
}

// The server prefers h2 whatever the client's order, falls back to http/1.1, and a client with
// neither simply gets no ALPN (not a failed handshake).
TEST_F(contexts_test, alpn_prefers_h2_then_http11) {
    auto negotiate = [&](const unsigned char* protos, unsigned int len) {
        tls_pair p(client_.get(), server_.get());
        EXPECT_TRUE(prepare_client_ssl(p.client.get(), "a.test"));
        EXPECT_EQ(SSL_set_alpn_protos(p.client.get(), protos, len), 0);
        EXPECT_TRUE(p.handshake());
        const unsigned char* proto = nullptr;
        unsigned int n = 0;
        SSL_get0_alpn_selected(p.client.get(), &proto, &n);
        return std::string(reinterpret_cast<const char*>(proto), n);
    };
    static const unsigned char h1_first[] = "\x08http/1.1\x02h2";
    static const unsigned char h1_only[] = "\x08http/1.1";
    static const unsigned char neither[] = "\x06spdy/3";
    EXPECT_EQ(negotiate(h1_first, sizeof h1_first - 1), "h2");
    EXPECT_EQ(negotiate(h1_only, sizeof h1_only - 1), "http/1.1");
    EXPECT_EQ(negotiate(neither, sizeof neither - 1), "");
}

TEST_F(contexts_test, handshake_without_sni_fails) {
    tls_pair p(client_.get(), server_.get());
    EXPECT_FALSE(p.handshake());
    EXPECT_EQ(cache_->mints(), 0u);
    ERR_clear_error();
}

TEST_F(contexts_test, ip_host_sends_no_sni_so_the_mitm_handshake_fails) {
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "10.1.2.3"));
    EXPECT_EQ(SSL_get_servername(p.client.get(), TLSEXT_NAMETYPE_host_name), nullptr);
    EXPECT_FALSE(p.handshake());
    ERR_clear_error();
}

TEST_F(contexts_test, ip_literal_sni_gets_an_ip_san_that_verifies) {
    // A sloppy client that puts the IP in SNI anyway: the leaf carries an IP SAN.
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "[10.1.2.3]"));
    ASSERT_EQ(SSL_set_tlsext_host_name(p.client.get(), "10.1.2.3"), 1);
    ASSERT_TRUE(p.handshake());
    EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
}

TEST_F(contexts_test, client_rejects_a_certificate_for_another_host) {
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "b.test"));
    ASSERT_EQ(SSL_set_tlsext_host_name(p.client.get(), "a.test"), 1);  // server mints for a.test
    EXPECT_FALSE(p.handshake());
    EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_ERR_HOSTNAME_MISMATCH);
    ERR_clear_error();
}

TEST_F(contexts_test, client_rejects_an_untrusted_ca) {
    auto plain = make_client_context("");  // system store only: our test CA is not in it
    ASSERT_TRUE(plain) << plain.message();
    tls_pair p(plain->get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "a.test"));
    EXPECT_FALSE(p.handshake());
    EXPECT_NE(SSL_get_verify_result(p.client.get()), X509_V_OK);
    ERR_clear_error();
}

TEST_F(contexts_test, tls12_handshake_and_servername) {
    ASSERT_EQ(SSL_CTX_set_max_proto_version(client_.get(), TLS1_2_VERSION), 1);
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "v12.test"));
    ASSERT_TRUE(p.handshake());
    EXPECT_EQ(SSL_version(p.client.get()), TLS1_2_VERSION);
    EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
    EXPECT_STREQ(SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name), "v12.test");
}

TEST_F(contexts_test, tls11_is_refused) {
    ssl_ctx_ptr old(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(old.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old.get(), TLS1_1_VERSION);
    SSL_CTX_set_security_level(old.get(), 0);
    SSL_CTX_set_verify(old.get(), SSL_VERIFY_NONE, nullptr);
    tls_pair p(old.get(), server_.get());
    SSL_set_tlsext_host_name(p.client.get(), "a.test");
    EXPECT_FALSE(p.handshake());
    ERR_clear_error();
}

TEST_F(contexts_test, sessions_resume) {
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version);
        ASSERT_EQ(SSL_CTX_set_max_proto_version(client_.get(), version), 1);
        session_ptr session;
        {
            tls_pair p(client_.get(), server_.get());
            ASSERT_TRUE(prepare_client_ssl(p.client.get(), "r.test"));
            ASSERT_TRUE(p.handshake());
            session.reset(SSL_get1_session(p.client.get()));
            ASSERT_TRUE(session);
            // An SSL freed without a shutdown marks its session not resumable (OpenSSL's
            // ssl_clear_bad_session), so close properly, as a connection pool must too.
            SSL_shutdown(p.client.get());
            SSL_shutdown(p.server.get());
            EXPECT_EQ(SSL_SESSION_is_resumable(session.get()), 1);
        }
        tls_pair p(client_.get(), server_.get());
        ASSERT_TRUE(prepare_client_ssl(p.client.get(), "r.test"));
        ASSERT_EQ(SSL_set_session(p.client.get(), session.get()), 1);
        ASSERT_TRUE(p.handshake());
        EXPECT_EQ(SSL_session_reused(p.client.get()), 1);
        EXPECT_EQ(SSL_session_reused(p.server.get()), 1);
        EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
        EXPECT_EQ(common_name(SSL_get0_peer_certificate(p.client.get())), "r.test");
        EXPECT_STREQ(SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name), "r.test");
    }
}

TEST_F(contexts_test, tickets_are_wanted_only_by_clients_offering_psk_dhe_ke) {
    {
        // OpenSSL's TLS 1.3 client offers psk_key_exchange_modes = psk_dhe_ke.
        tls_pair p(client_.get(), server_.get());
        EXPECT_TRUE(client_can_use_tickets(p.server.get())) << "default before any ClientHello";
        ASSERT_TRUE(prepare_client_ssl(p.client.get(), "t.test"));
        ASSERT_TRUE(p.handshake());
        EXPECT_TRUE(client_can_use_tickets(p.server.get()));
    }
    {
        // A TLS 1.2-only client sends no psk_key_exchange_modes (as a Go client without a
        // session cache): no TLS 1.3 ticket could ever come back.
        ASSERT_EQ(SSL_CTX_set_max_proto_version(client_.get(), TLS1_2_VERSION), 1);
        tls_pair p(client_.get(), server_.get());
        ASSERT_TRUE(prepare_client_ssl(p.client.get(), "t.test"));
        ASSERT_TRUE(p.handshake());
        EXPECT_FALSE(client_can_use_tickets(p.server.get()));
    }
}

TEST_F(contexts_test, hello_retry_request_still_serves_one_chain) {
    // The client sends a key share for P-256 only (its first group); the server accepts only
    // X25519 => HelloRetryRequest, so the ClientHello callback runs twice on one SSL.
    tls_pair p(client_.get(), server_.get());
    ASSERT_TRUE(prepare_client_ssl(p.client.get(), "hrr.test"));
    ASSERT_EQ(SSL_set1_groups_list(p.client.get(), "P-256:X25519"), 1);
    ASSERT_EQ(SSL_set1_groups_list(p.server.get(), "X25519"), 1);
    ASSERT_TRUE(p.handshake());
    EXPECT_EQ(SSL_version(p.client.get()), TLS1_3_VERSION);
    EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(p.client.get());
    ASSERT_NE(chain, nullptr);
    EXPECT_EQ(sk_X509_num(chain), 2);
}

TEST(make_client_context, extra_bundle_errors) {
    auto missing = make_client_context("/nonexistent/bundle.pem");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.message(), "/nonexistent/bundle.pem: cannot load CA bundle: No such file or directory");

    temp_dir dir;
    const std::string garbage = dir.path + "/garbage.pem";
    std::ofstream(garbage) << "not a certificate\n";
    auto bad = make_client_context(garbage);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message().rfind(garbage + ": cannot load CA bundle: ", 0), 0u) << bad.message();
}

TEST(make_client_context, settings) {
    auto ctx = make_client_context("");
    ASSERT_TRUE(ctx) << ctx.message();
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx->get()), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->get()) & SSL_VERIFY_PEER, SSL_VERIFY_PEER);
    EXPECT_TRUE(SSL_CTX_get_session_cache_mode(ctx->get()) & SSL_SESS_CACHE_CLIENT);
}

TEST(prepare_client_ssl, host_forms) {
    auto ctx = make_client_context("");
    ASSERT_TRUE(ctx);
    {
        ssl_ptr ssl(SSL_new(ctx->get()));
        ASSERT_TRUE(prepare_client_ssl(ssl.get(), "Example.com."));
        EXPECT_STREQ(SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name), "Example.com");
        EXPECT_STREQ(SSL_get0_peername(ssl.get()), nullptr);  // set only after verification
    }
    {
        ssl_ptr ssl(SSL_new(ctx->get()));
        ASSERT_TRUE(prepare_client_ssl(ssl.get(), "[::1]"));
        EXPECT_EQ(SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name), nullptr);
    }
    {
        ssl_ptr ssl(SSL_new(ctx->get()));
        EXPECT_FALSE(prepare_client_ssl(ssl.get(), ""));
        EXPECT_FALSE(prepare_client_ssl(ssl.get(), "."));
    }
}

}  // namespace
}  // namespace iron::tls
