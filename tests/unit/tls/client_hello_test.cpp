#include "tls/client_hello.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <random>
#include <string>

using namespace iron::tls;
using status = client_hello_info::status;

namespace {

// A real ClientHello, produced by OpenSSL into a memory BIO.
std::string real_client_hello(const char* sni, int max_version = TLS1_3_VERSION) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL* ssl = SSL_new(ctx);
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);
    if (sni) SSL_set_tlsext_host_name(ssl, sni);
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl);
    std::string out;
    char buf[4096];
    int n;
    while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return out;
}

}  // namespace

TEST(ClientHello, ReadsSniTls13AndTls12) {
    auto h13 = real_client_hello("api.example.com");
    auto r = parse_client_hello(h13);
    ASSERT_EQ(r.state, status::ok);
    EXPECT_EQ(r.sni, "api.example.com");
    auto r12 = parse_client_hello(real_client_hello("a.test", TLS1_2_VERSION));
    ASSERT_EQ(r12.state, status::ok);
    EXPECT_EQ(r12.sni, "a.test");
}

TEST(ClientHello, NoSni) {
    auto r = parse_client_hello(real_client_hello(nullptr));
    ASSERT_EQ(r.state, status::ok);
    EXPECT_EQ(r.sni, "");
}

TEST(ClientHello, EveryPrefixNeedsMore) {
    auto h = real_client_hello("prefix.test");
    for (std::size_t n = 0; n < h.size(); ++n)
        ASSERT_EQ(parse_client_hello(std::string_view(h).substr(0, n)).state, status::need_more) << n;
}

TEST(ClientHello, SplitAcrossRecords) {
    auto h = real_client_hello("split.test");
    // Re-frame the handshake message into two TLS records.
    std::string msg = h.substr(5);
    std::string first = msg.substr(0, 40), second = msg.substr(40);
    auto record = [](const std::string& payload) {
        std::string r = {char(22), char(3), char(1), char(payload.size() >> 8), char(payload.size() & 0xff)};
        return r + payload;
    };
    auto r = parse_client_hello(record(first) + record(second));
    ASSERT_EQ(r.state, status::ok);
    EXPECT_EQ(r.sni, "split.test");
}

TEST(ClientHello, NotTls) {
    EXPECT_EQ(parse_client_hello("GET / HTTP/1.1\r\nHost: x\r\n\r\n").state, status::invalid);
    EXPECT_EQ(parse_client_hello(std::string("\x16\x03\x01\x00\x00", 5)).state, status::invalid);
}

TEST(ClientHello, MutatedHellosNeverCrash) {
    auto h = real_client_hello("fuzz.test");
    std::mt19937 rng(11);
    for (int i = 0; i < 20000; ++i) {
        std::string m = h;
        int flips = 1 + rng() % 4;
        for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng());
        if (rng() % 3 == 0) m.resize(rng() % m.size());
        auto r = parse_client_hello(m);
        if (r.state == status::ok) EXPECT_LE(r.sni.size(), m.size());
    }
}
