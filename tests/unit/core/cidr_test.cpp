#include "core/cidr.hpp"

#include <gtest/gtest.h>

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
    EXPECT_EQ(dl->prefixes().size(), 4u);
    EXPECT_EQ(dl->first_match(ip("127.0.0.1")).value_or(""), "127.0.0.0/8");
    EXPECT_EQ(dl->first_match(ip("::ffff:127.0.0.1")).value_or(""), "127.0.0.0/8");
    EXPECT_EQ(dl->first_match(ip("169.254.169.254")).value_or(""), "169.254.169.254/32");
    EXPECT_EQ(dl->first_match(ip("fd00:ec2::254")).value_or(""), "fd00:ec2::254/128");
    EXPECT_EQ(dl->first_match(ip("::1")).value_or(""), "::1/128");
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

}  // namespace
}  // namespace iron::core
