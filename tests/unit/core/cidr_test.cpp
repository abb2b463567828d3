#include "core/cidr.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace iron::core {
namespace {

ip_address ip(const char* s) {
    auto a = ip_address::parse(s);
    EXPECT_TRUE(a.has_value()) << s;
    return a.value_or(ip_address{});
}

TEST(IpAddress, Parse) {
    EXPECT_TRUE(ip("1.2.3.4").is_v4);
    EXPECT_EQ(ip("1.2.3.4").to_string(), "1.2.3.4");
    EXPECT_FALSE(ip("::1").is_v4);
    EXPECT_EQ(ip("::1").to_string(), "::1");
    EXPECT_EQ(ip("[2001:db8::1]").to_string(), "2001:db8::1");
    // IPv4-mapped IPv6 is unmapped.
    EXPECT_TRUE(ip("::ffff:127.0.0.1").is_v4);
    EXPECT_EQ(ip("::ffff:127.0.0.1").to_string(), "127.0.0.1");
    for (const char* bad : {"", "example.com", "1.2.3", "1.2.3.256", "[::1", "::1]", "1.2.3.4:80", "01.2.3.4"}) {
        EXPECT_FALSE(ip_address::parse(bad).has_value()) << bad;
    }
}

TEST(Cidr, ParseAndMask) {
    auto c = cidr::parse("10.1.2.3/8");
    ASSERT_TRUE(c) << c.message();
    EXPECT_EQ(c->text, "10.0.0.0/8");
    EXPECT_EQ(c->prefix_len, 8);
    EXPECT_TRUE(c->contains(ip("10.200.0.1")));
    EXPECT_FALSE(c->contains(ip("11.0.0.1")));

    auto v6 = cidr::parse("2001:db8:ffff::1/32");
    ASSERT_TRUE(v6) << v6.message();
    EXPECT_EQ(v6->text, "2001:db8::/32");
    EXPECT_TRUE(v6->contains(ip("2001:db8:1::5")));
    EXPECT_FALSE(v6->contains(ip("2001:db9::5")));

    auto odd = cidr::parse("192.168.1.255/23");
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->text, "192.168.0.0/23");
    EXPECT_TRUE(odd->contains(ip("192.168.1.7")));
    EXPECT_FALSE(odd->contains(ip("192.168.2.7")));

    auto all = cidr::parse("0.0.0.0/0");
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->contains(ip("8.8.8.8")));
    EXPECT_FALSE(all->contains(ip("::1")));  // v4 prefixes match v4 only

    auto host = cidr::parse("1.2.3.4/32");
    ASSERT_TRUE(host);
    EXPECT_TRUE(host->contains(ip("1.2.3.4")));
    EXPECT_FALSE(host->contains(ip("1.2.3.5")));
}

TEST(Cidr, FamiliesDoNotMix) {
    auto v6all = cidr::parse("::/0");
    ASSERT_TRUE(v6all);
    EXPECT_TRUE(v6all->contains(ip("::1")));
    EXPECT_FALSE(v6all->contains(ip("127.0.0.1")));
    // A mapped prefix of /96 or longer is the equivalent IPv4 prefix (addresses are unmapped).
    auto mapped = cidr::parse("::ffff:127.0.0.0/104");
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->text, "127.0.0.0/8");
    EXPECT_TRUE(mapped->contains(ip("127.1.2.3")));
}

TEST(Cidr, Errors) {
    auto r = cidr::parse("1.2.3.4");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "invalid CIDR \"1.2.3.4\": must be CIDR notation, e.g. 1.2.3.4/32 or ::1/128");
    auto e = cidr::parse("");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.message(), "empty CIDR entry");
    for (const char* bad : {"1.2.3.4/33", "::1/129", "x/8", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4/08", "1.2.3.4/8x",
                            "[::1]/128", "1.2.3.4/8/8"}) {
        auto b = cidr::parse(bad);
        ASSERT_FALSE(b) << bad;
        EXPECT_EQ(b.message().rfind(std::string("invalid CIDR \"") + bad + "\": ", 0), 0u) << b.message();
    }
}

TEST(DenyList, DefaultsAndMatching) {
    auto dl = deny_list::parse(default_upstream_deny_cidrs());
    ASSERT_TRUE(dl) << dl.message();
    EXPECT_EQ(dl->prefixes().size(), 7u);
    EXPECT_EQ(dl->first_match(ip("127.0.0.1")).value_or(""), "127.0.0.0/8");
    EXPECT_EQ(dl->first_match(ip("::ffff:127.0.0.1")).value_or(""), "127.0.0.0/8");
    EXPECT_EQ(dl->first_match(ip("169.254.169.254")).value_or(""), "169.254.169.254/32");
    EXPECT_EQ(dl->first_match(ip("fd00:ec2::254")).value_or(""), "fd00:ec2::254/128");
    EXPECT_EQ(dl->first_match(ip("fd20:ce::254")).value_or(""), "fd20:ce::254/128");  // GCP metadata, IPv6
    EXPECT_FALSE(dl->first_match(ip("fd20:ce::253")));
    EXPECT_EQ(dl->first_match(ip("::1")).value_or(""), "::1/128");
    EXPECT_EQ(dl->first_match(ip("0.0.0.0")).value_or(""), "0.0.0.0/8");
    EXPECT_EQ(dl->first_match(ip("0.1.2.3")).value_or(""), "0.0.0.0/8");
    EXPECT_EQ(dl->first_match(ip("::")).value_or(""), "::/128");
    EXPECT_FALSE(dl->first_match(ip("10.0.0.1")));
    EXPECT_FALSE(dl->first_match(ip("169.254.169.253")));
    EXPECT_FALSE(dl->first_match(ip("2001:db8::1")));
}

TEST(DenyList, ParseTrimsAndPrefixesErrors) {
    auto ok = deny_list::parse({"  10.0.0.0/8 ", "\t::1/128\n"});
    ASSERT_TRUE(ok) << ok.message();
    EXPECT_EQ(ok->prefixes()[0].text, "10.0.0.0/8");

    auto empty = deny_list::parse({});
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
    EXPECT_FALSE(empty->first_match(ip("127.0.0.1")));

    auto bare = deny_list::parse({"1.2.3.4"});
    ASSERT_FALSE(bare);
    EXPECT_EQ(bare.message(),
              "proxy.upstream_deny_cidrs: invalid CIDR \"1.2.3.4\": must be CIDR notation, e.g. 1.2.3.4/32 or ::1/128");
    auto blank = deny_list::parse({"10.0.0.0/8", "   "});
    ASSERT_FALSE(blank);
    EXPECT_EQ(blank.message(), "proxy.upstream_deny_cidrs: empty CIDR entry");
    auto bad = deny_list::parse({"x/8"});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.message().rfind("proxy.upstream_deny_cidrs: invalid CIDR \"x/8\": ", 0), 0u);
}

TEST(EmbeddedIpv4, DecodesEachLayout) {
    struct row {
        const char* ip;
        std::vector<std::pair<std::string, std::string>> want;  // (IPv4, scheme)
    };
    const std::vector<row> rows = {
        {"64:ff9b::a9fe:a9fe", {{"169.254.169.254", "NAT64"}}},
        {"64:ff9b::127.0.0.1", {{"127.0.0.1", "NAT64"}}},
        {"64:ff9b::", {{"0.0.0.0", "NAT64"}}},
        // RFC 6052 /48: octets at bits 48..63 and 72..87; the u octet (bits 64..71) is skipped.
        {"64:ff9b:1:a9fe:a9:fe00::", {{"169.254.169.254", "local-use NAT64"}}},
        {"64:ff9b:1:7f00:0:100::", {{"127.0.0.1", "local-use NAT64"}}},
        {"2002:7f00:1::", {{"127.0.0.1", "6to4"}}},
        {"2002:a9fe:a9fe:1234::5", {{"169.254.169.254", "6to4"}}},
        // Teredo: server in bits 32..63, client = last 32 bits inverted (~127.0.0.1 = 80ff:fffe).
        {"2001:0:a9fe:a9fe::80ff:fffe", {{"169.254.169.254", "Teredo server"}, {"127.0.0.1", "Teredo client"}}},
        {"2001:0:102:304:0:0:5601:1bfe", {{"1.2.3.4", "Teredo server"}, {"169.254.228.1", "Teredo client"}}},
        // No embedding.
        {"2001:db8::1", {}},
        {"2001:1::1", {}},      // not Teredo: 2001:0000::/32 only
        {"64:ff9b:2::1", {}},   // neither NAT64 prefix
        {"64:ff9b:0:0:0:1::1", {}},  // in 64:ff9b::/48 but not /96
        {"2003::1", {}},
        {"::1", {}},
        {"127.0.0.1", {}},
    };
    for (const auto& r : rows) {
        std::vector<std::pair<std::string, std::string>> got;
        for (const auto& e : decode_embedded_ipv4(ip(r.ip))) {
            EXPECT_TRUE(e.v4.is_v4) << r.ip;
            got.emplace_back(e.v4.to_string(), e.scheme);
        }
        EXPECT_EQ(got, r.want) << r.ip;
    }
}

TEST(UpstreamAddress, ClassifiedAgainstTheDenyList) {
    struct row {
        std::vector<std::string> deny;
        const char* ip;
        const char* want;  // describe() of the denial, or "" for allowed
    };
    const std::vector<std::string> defaults = default_upstream_deny_cidrs();
    const std::vector<std::string> loopback_only = {"127.0.0.0/8"};
    const std::vector<std::string> metadata_only = {"169.254.169.254/32"};
    const std::vector<row> rows = {
        // Plain matches keep the Go shape.
        {defaults, "127.0.0.1", "127.0.0.1 in 127.0.0.0/8"},
        {defaults, "10.0.0.1", ""},
        {defaults, "2001:db8::1", ""},
        // The unspecified addresses: in the defaults themselves ...
        {defaults, "0.0.0.0", "0.0.0.0 in 0.0.0.0/8"},
        {defaults, "0.1.2.3", "0.1.2.3 in 0.0.0.0/8"},
        {defaults, "::", ":: in ::/128"},
        // ... and, with a list that names loopback but not them, denied as what they reach.
        {loopback_only, "0.0.0.0", "0.0.0.0 (this host, as 127.0.0.1) in 127.0.0.0/8"},
        {loopback_only, "::", ":: (this host, as 127.0.0.1) in 127.0.0.0/8"},
        {{"::1/128"}, "0.0.0.0", "0.0.0.0 (this host, as ::1) in ::1/128"},
        {metadata_only, "0.0.0.0", ""},
        {metadata_only, "::", ""},
        // Embedded IPv4, whatever the list.
        {defaults, "64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe (embeds 169.254.169.254) in 169.254.169.254/32"},
        {metadata_only, "64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe (embeds 169.254.169.254) in 169.254.169.254/32"},
        {defaults, "64:ff9b::7f00:2", "64:ff9b::7f00:2 (embeds 127.0.0.2) in 127.0.0.0/8"},
        {defaults, "64:ff9b::", "64:ff9b:: (embeds 0.0.0.0) in 0.0.0.0/8"},
        {loopback_only, "64:ff9b::", "64:ff9b:: (embeds 0.0.0.0: this host, as 127.0.0.1) in 127.0.0.0/8"},
        {defaults, "64:ff9b:1:7f00:0:100::", "64:ff9b:1:7f00:0:100:: (embeds 127.0.0.1) in 127.0.0.0/8"},
        {defaults, "2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1 (embeds 169.254.169.254) in 169.254.169.254/32"},
        {defaults, "2002:7f00:1::", "2002:7f00:1:: (embeds 127.0.0.1) in 127.0.0.0/8"},
        {defaults, "2001:0:a9fe:a9fe::5678:1234", "2001:0:a9fe:a9fe::5678:1234 (embeds 169.254.169.254) in 169.254.169.254/32"},
        {defaults, "2001:0:102:304::80ff:fffe", "2001:0:102:304::80ff:fffe (embeds 127.0.0.1) in 127.0.0.0/8"},
        {defaults, "64:ff9b::808:808", ""},     // 8.8.8.8
        {defaults, "2002:808:808::1", ""},
        {defaults, "2001:0:808:808::f7f7:f7f7", ""},  // server and client 8.8.8.8
        // An explicit list replaces the defaults; embeddings are checked against it.
        {{"10.0.0.0/8"}, "127.0.0.1", ""},
        {{"10.0.0.0/8"}, "2002:a00:1::", "2002:a00:1:: (embeds 10.0.0.1) in 10.0.0.0/8"},
        // The IPv6 form listed itself wins over the embedding.
        {{"2002::/16", "127.0.0.0/8"}, "2002:7f00:1::", "2002:7f00:1:: in 2002::/16"},
        // An empty list denies nothing.
        {{}, "0.0.0.0", ""},
        {{}, "64:ff9b::7f00:1", ""},
    };
    for (const auto& r : rows) {
        auto dl = deny_list::parse(r.deny);
        ASSERT_TRUE(dl) << dl.message();
        const ip_address a = ip(r.ip);
        auto d = check_upstream_address(*dl, a);
        EXPECT_EQ(d ? d->describe(a) : std::string(), r.want) << r.ip;
    }
}

}  // namespace
}  // namespace iron::core
