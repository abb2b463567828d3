// upstream_proxy selection: proxy URLs (schemes, defaults, userinfo, redaction) and the NO_PROXY
// grammar of Go's x/net/http/httpproxy, every form; the CONNECT request and reply parsing.
#include "upstream_proxy/selection.hpp"

#include <gtest/gtest.h>

#include "upstream_proxy/handshake.hpp"

namespace iron::upstream_proxy {
namespace {

TEST(ParentUrl, SchemesAndDefaultPorts) {
    auto h = parse_parent("http://squid.corp");
    ASSERT_TRUE(h) << h.message();
    EXPECT_EQ(h->scheme, scheme::http);
    EXPECT_EQ(h->port, 80);
    EXPECT_EQ(parse_parent("https://p")->port, 443);
    EXPECT_EQ(parse_parent("socks5://p")->port, 1080);
    EXPECT_EQ(parse_parent("SOCKS5H://p:9050")->scheme, scheme::socks5h);
    EXPECT_EQ(parse_parent("socks5h://p:9050")->port, 9050);
    EXPECT_EQ(parse_parent("http://p:3128/")->port, 3128);
}

TEST(ParentUrl, WithoutSchemeIsHttpLikeGo) {
    auto p = parse_parent("proxy.corp:3128");
    ASSERT_TRUE(p) << p.message();
    EXPECT_EQ(p->scheme, scheme::http);
    EXPECT_EQ(p->host, "proxy.corp");
    EXPECT_EQ(p->port, 3128);
}

TEST(ParentUrl, Ipv6InBrackets) {
    auto p = parse_parent("http://[::1]:3128");
    ASSERT_TRUE(p) << p.message();
    EXPECT_EQ(p->host, "::1");
    EXPECT_EQ(p->authority(), "[::1]:3128");
    EXPECT_FALSE(parse_parent("http://::1:3128"));
}

TEST(ParentUrl, RejectsWhatWeCannotUse) {
    for (const char* bad : {"ftp://p:21", "socks4://p", "http://", "http://p:0", "http://p:99999", "http://p:x",
                            "http://p/path", "http://p?q=1", "http://[::1", "http://a b"}) {
        EXPECT_FALSE(parse_parent(bad)) << bad;
    }
}

TEST(ParentUrl, UserinfoIsDecodedAndNeverDisplayed) {
    auto p = parse_parent("http://alice:s%40cret@proxy:3128");
    ASSERT_TRUE(p) << p.message();
    EXPECT_EQ(*p->username, "alice");
    EXPECT_EQ(*p->password, "s@cret");
    EXPECT_EQ(p->display, "http://alice:***@proxy:3128");
    EXPECT_EQ(p->basic_credentials(), "Basic YWxpY2U6c0BjcmV0");  // base64("alice:s@cret")
    auto bad = parse_parent("http://alice:topsecret@proxy:notaport");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message().find("topsecret"), std::string::npos) << bad.message();
    auto user_only = parse_parent("socks5://bob@p");
    ASSERT_TRUE(user_only);
    EXPECT_EQ(user_only->display, "socks5://bob@p:1080");
    EXPECT_FALSE(user_only->password);
}

TEST(MakeSelector, NamesTheSettingAndTakesHttpsParents) {
    auto bad = make_selector("ftp://x", "", "");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message().rfind("http_proxy: ", 0), 0u) << bad.message();
    auto tls = make_selector("", "https://p:8443", "");
    ASSERT_TRUE(tls) << tls.message();
    EXPECT_EQ(tls->https()->scheme, scheme::https);
    EXPECT_EQ(tls->choose("example.com", 443, true)->port, 8443);
    auto ok = make_selector("http://p:3128", " ", "");
    ASSERT_TRUE(ok) << ok.message();
    EXPECT_TRUE(ok->http());
    EXPECT_FALSE(ok->https());
}

TEST(Selector, PicksBySchemeAndNeverProxiesLoopback) {
    auto s = make_selector("http://hp:1", "socks5h://sp:2", "");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->choose("example.com", 80, false)->host, "hp");
    EXPECT_EQ(s->choose("example.com", 443, true)->host, "sp");
    for (const char* loop : {"localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"}) {
        EXPECT_EQ(s->choose(loop, 443, true), nullptr) << loop;
    }
    // Go decides on the request's host, not its address: a name is proxied whatever it resolves to.
    EXPECT_NE(s->choose("localhost.example", 443, true), nullptr);
    EXPECT_NE(s->choose("127.example", 443, true), nullptr);
    selector none;
    EXPECT_EQ(none.choose("example.com", 443, true), nullptr);
    EXPECT_FALSE(none.any());
}

TEST(NoProxy, Star) {
    auto l = no_proxy_list::parse("foo.com, *");
    EXPECT_TRUE(l.bypasses("anything.net", 443));
    EXPECT_TRUE(l.bypasses("10.0.0.1", 80));
}

TEST(NoProxy, DomainMatchesItselfAndSubdomains) {
    auto l = no_proxy_list::parse("example.com");
    EXPECT_TRUE(l.bypasses("example.com", 443));
    EXPECT_TRUE(l.bypasses("api.example.com", 443));
    EXPECT_TRUE(l.bypasses("API.Example.COM", 443));
    EXPECT_FALSE(l.bypasses("badexample.com", 443));
    EXPECT_FALSE(l.bypasses("example.com.evil", 443));
}

TEST(NoProxy, LeadingDotAndStarDotMatchSubdomainsOnly) {
    for (const char* entry : {".example.com", "*.example.com"}) {
        auto l = no_proxy_list::parse(entry);
        EXPECT_FALSE(l.bypasses("example.com", 443)) << entry;
        EXPECT_TRUE(l.bypasses("a.example.com", 443)) << entry;
        EXPECT_TRUE(l.bypasses("a.b.example.com", 443)) << entry;
    }
}

TEST(NoProxy, DomainWithPort) {
    auto l = no_proxy_list::parse("example.com:8443");
    EXPECT_TRUE(l.bypasses("example.com", 8443));
    EXPECT_TRUE(l.bypasses("x.example.com", 8443));
    EXPECT_FALSE(l.bypasses("example.com", 443));
}

TEST(NoProxy, IpAndIpWithPort) {
    auto l = no_proxy_list::parse("10.1.2.3, 10.9.9.9:8080, [2001:db8::1]:443, 2001:db8::2");
    EXPECT_TRUE(l.bypasses("10.1.2.3", 1));
    EXPECT_TRUE(l.bypasses("10.9.9.9", 8080));
    EXPECT_FALSE(l.bypasses("10.9.9.9", 80));
    EXPECT_TRUE(l.bypasses("2001:db8::1", 443));
    EXPECT_FALSE(l.bypasses("2001:db8::1", 80));
    EXPECT_TRUE(l.bypasses("2001:db8::2", 80));
    EXPECT_FALSE(l.bypasses("10.1.2.4", 1));
}

TEST(NoProxy, Cidr) {
    auto l = no_proxy_list::parse("192.168.0.0/16,fd00::/8");
    EXPECT_TRUE(l.bypasses("192.168.44.1", 443));
    EXPECT_FALSE(l.bypasses("192.169.0.1", 443));
    EXPECT_TRUE(l.bypasses("fd12::1", 443));
    EXPECT_FALSE(l.bypasses("fe80::1", 443));
    // A CIDR says nothing about names.
    EXPECT_FALSE(l.bypasses("host.internal", 443));
}

TEST(NoProxy, BlankAndUnusableEntriesAreSkipped) {
    auto l = no_proxy_list::parse(" , ,10.0.0.0/99,:80, ");
    EXPECT_FALSE(l.bypasses("example.com", 80));
    EXPECT_FALSE(l.bypasses("10.0.0.1", 80));
}

TEST(NoProxy, SelectorHonoursIt) {
    auto s = make_selector("http://hp:1", "http://hp:1", "internal.corp,10.0.0.0/8");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->choose("git.internal.corp", 443, true), nullptr);
    EXPECT_EQ(s->choose("10.2.3.4", 80, false), nullptr);
    EXPECT_NE(s->choose("example.com", 443, true), nullptr);
}

TEST(ConnectHandshake, RequestCarriesCredentialsOnlyWhenGiven) {
    auto plain = parse_parent("http://p:3128");
    EXPECT_EQ(connect_request(*plain, "example.com", 443),
              "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    auto authed = parse_parent("http://u:pw@p:3128");
    EXPECT_EQ(connect_request(*authed, "2001:db8::1", 8443),
              "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n"
              "Proxy-Authorization: Basic dTpwdw==\r\n\r\n");
}

TEST(ConnectHandshake, ReplyStatus) {
    EXPECT_EQ(connect_reply_status("HTTP/1.1 200 Connection established\r\n\r\n"), 0);
    EXPECT_EQ(connect_reply_status("HTTP/1.0 200\r\n\r\n"), 0);
    EXPECT_EQ(connect_reply_status("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), 407);
    EXPECT_EQ(connect_reply_status("HTTP/1.1 502 Bad Gateway\r\n\r\n"), 502);
    EXPECT_EQ(connect_reply_status("SSH-2.0-OpenSSH\r\n\r\n"), -1);
    EXPECT_EQ(connect_reply_status("HTTP/1.1 2000 x\r\n\r\n"), -1);
}

}  // namespace
}  // namespace iron::upstream_proxy
