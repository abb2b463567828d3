// dns::codec: the decision table (static, passthrough, intercept), the reply's flags and sections,
// truncation, malformed input, and a randomized robustness run. Queries are built and replies
// read back with ldns, independently of the code under test's own encoder paths.
#include "dns/codec.hpp"

#include <gtest/gtest.h>
// ldns/common.h #defines bool, true and false (as _Bool, 1 and 0) unless stdbool.h came first.
#include <stdbool.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <random>

namespace iron::dns::testing {

// ---- helpers (also used by server_test.cpp, same test binary) --------------------------------

struct q_spec {
    std::string name;
    std::uint16_t type = type_a;
};

struct query_opts {
    std::uint16_t id = 0x1234;
    bool rd = true;
    bool cd = false;
    int opcode = 0;
    int edns_size = -1;  // -1: no OPT record
    bool do_bit = false;
    int edns_version = 0;
};

std::vector<std::uint8_t> make_query(const std::vector<q_spec>& qs, const query_opts& o) {
    ldns_pkt* p = ldns_pkt_new();
    ldns_pkt_set_id(p, o.id);
    ldns_pkt_set_rd(p, o.rd);
    ldns_pkt_set_cd(p, o.cd);
    ldns_pkt_set_opcode(p, static_cast<ldns_pkt_opcode>(o.opcode));
    for (const auto& q : qs) {
        ldns_rr* rr = ldns_rr_new();
        ldns_rr_set_owner(rr, ldns_dname_new_frm_str(q.name.c_str()));
        ldns_rr_set_type(rr, static_cast<ldns_rr_type>(q.type));
        ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
        ldns_rr_set_question(rr, true);
        ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, rr);
    }
    if (o.edns_size >= 0) {
        ldns_pkt_set_edns_udp_size(p, static_cast<std::uint16_t>(o.edns_size));
        ldns_pkt_set_edns_do(p, o.do_bit);
        ldns_pkt_set_edns_version(p, static_cast<std::uint8_t>(o.edns_version));
    }
    std::uint8_t* wire = nullptr;
    std::size_t n = 0;
    EXPECT_EQ(ldns_pkt2wire(&wire, p, &n), LDNS_STATUS_OK);
    std::vector<std::uint8_t> out(wire, wire + n);
    std::free(wire);
    ldns_pkt_free(p);
    return out;
}

std::vector<std::uint8_t> make_query(const std::vector<q_spec>& qs) { return make_query(qs, query_opts{}); }

struct rr_text {
    std::string owner;
    std::uint16_t type = 0;
    std::uint32_t ttl = 0;
    std::string data;
};

struct reply {
    bool ok = false;  // parsed
    std::size_t size = 0;
    std::uint16_t id = 0;
    bool qr = false, aa = false, tc = false, rd = false, cd = false, ra = false;
    int opcode = -1;
    int rcode = -1;  // with the EDNS extended bits
    std::vector<std::string> questions;
    std::vector<rr_text> answers;
    bool edns = false;
    std::uint16_t edns_size = 0;
    bool do_bit = false;
};

std::string rdf_text(const ldns_rdf* r) {
    if (!r) return "";
    char* s = ldns_rdf2str(r);
    std::string out = s ? s : "";
    std::free(s);
    return out;
}

reply parse_reply(const std::vector<std::uint8_t>& wire) {
    reply r;
    r.size = wire.size();
    ldns_pkt* p = nullptr;
    if (wire.empty() || ldns_wire2pkt(&p, wire.data(), wire.size()) != LDNS_STATUS_OK) return r;
    r.ok = true;
    r.id = ldns_pkt_id(p);
    r.qr = ldns_pkt_qr(p);
    r.aa = ldns_pkt_aa(p);
    r.tc = ldns_pkt_tc(p);
    r.rd = ldns_pkt_rd(p);
    r.cd = ldns_pkt_cd(p);
    r.ra = ldns_pkt_ra(p);
    r.opcode = ldns_pkt_get_opcode(p);
    r.edns = ldns_pkt_edns(p);
    r.rcode = ldns_pkt_get_rcode(p) | (r.edns ? ldns_pkt_edns_extended_rcode(p) << 4 : 0);
    r.edns_size = ldns_pkt_edns_udp_size(p);
    r.do_bit = ldns_pkt_edns_do(p);
    const ldns_rr_list* qs = ldns_pkt_question(p);
    for (std::size_t i = 0; i < ldns_rr_list_rr_count(qs); ++i)
        r.questions.push_back(rdf_text(ldns_rr_owner(ldns_rr_list_rr(qs, i))));
    const ldns_rr_list* an = ldns_pkt_answer(p);
    for (std::size_t i = 0; i < ldns_rr_list_rr_count(an); ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(an, i);
        r.answers.push_back({rdf_text(ldns_rr_owner(rr)), static_cast<std::uint16_t>(ldns_rr_get_type(rr)),
                             ldns_rr_ttl(rr), rdf_text(ldns_rr_rdf(rr, 0))});
    }
    ldns_pkt_free(p);
    return r;
}

namespace {

config::dns_config test_config() {
    config::dns_config c;
    c.enabled = true;
    c.listen = "127.0.0.1:0";
    c.proxy_ip = "10.9.8.7";
    c.records = {
        {"api.internal", "A", "192.0.2.1"},
        {"v6.internal", "AAAA", "2001:db8::1"},
        {"alias.internal", "CNAME", "target.example"},
        {"Mixed.Case.Test.", "A", "192.0.2.9"},
        {"static.internal.corp", "A", "192.0.2.50"},
        {"two.internal", "A", "192.0.2.2"},
        {"two.internal", "A", "192.0.2.3"},
    };
    c.passthrough = {"*.internal.corp", "exact.example.com", "api.*.net"};
    return c;
}

policy test_policy() {
    auto p = make_policy(test_config());
    EXPECT_TRUE(p) << p.message();
    return *p;
}

rdata v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) { return a_record({a, b, c, d}); }

rdata v6_db8_1() {
    rdata r;
    r.type = type_aaaa;
    r.ip = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return r;
}

rdata cname(std::string target) {
    rdata r;
    r.type = type_cname;
    r.target = std::move(target);
    return r;
}

constexpr std::uint16_t type_mx = 15, type_txt = 16, type_https = 65, type_any = 255;

}  // namespace

// ---- the decision table (Go's precedence: static record, passthrough, intercept) ---------------

struct decide_case {
    const char* name;
    std::uint16_t qtype;
    route how;
    std::vector<rdata> answers;
    std::string lookup;  // "" = no lookup
};

TEST(DnsCodecDecide, Table) {
    const policy p = test_policy();
    const rdata proxy = v4(10, 9, 8, 7);
    const std::vector<decide_case> cases = {
        // intercept: A ⇒ proxy_ip, every other type ⇒ empty
        {"foo.example.", type_a, route::intercept, {proxy}, ""},
        {"foo.example.", type_aaaa, route::intercept, {}, ""},
        {"foo.example.", type_mx, route::intercept, {}, ""},
        {"foo.example.", type_txt, route::intercept, {}, ""},
        {"foo.example.", type_https, route::intercept, {}, ""},
        {"foo.example.", type_any, route::intercept, {}, ""},
        {".", type_a, route::intercept, {proxy}, ""},
        // static records win, exact lower-case FQDN, with or without the trailing dot
        {"api.internal.", type_a, route::static_record, {v4(192, 0, 2, 1)}, ""},
        {"API.Internal.", type_a, route::static_record, {v4(192, 0, 2, 1)}, ""},
        {"api.internal", type_a, route::static_record, {v4(192, 0, 2, 1)}, ""},
        {"mixed.case.test.", type_a, route::static_record, {v4(192, 0, 2, 9)}, ""},
        {"v6.internal.", type_aaaa, route::static_record, {v6_db8_1()}, ""},
        {"alias.internal.", type_cname, route::static_record, {cname("target.example.")}, ""},
        {"two.internal.", type_a, route::static_record, {v4(192, 0, 2, 2), v4(192, 0, 2, 3)}, ""},
        {"static.internal.corp.", type_a, route::static_record, {v4(192, 0, 2, 50)}, ""},  // beats passthrough
        // type mismatch falls through
        {"api.internal.", type_aaaa, route::intercept, {}, ""},
        {"api.internal.", type_cname, route::intercept, {}, ""},
        {"v6.internal.", type_a, route::intercept, {proxy}, ""},
        {"alias.internal.", type_a, route::intercept, {proxy}, ""},  // QUIRK kept: CNAME never chased
        {"sub.api.internal.", type_a, route::intercept, {proxy}, ""},
        // passthrough: "*.x" = apex and any depth; only A is looked up
        {"internal.corp.", type_a, route::passthrough, {}, "internal.corp."},
        {"a.internal.corp.", type_a, route::passthrough, {}, "a.internal.corp."},
        {"a.b.c.internal.corp.", type_a, route::passthrough, {}, "a.b.c.internal.corp."},
        {"X.Internal.CORP.", type_a, route::passthrough, {}, "x.internal.corp."},
        {"a.internal.corp.", type_aaaa, route::passthrough, {}, ""},
        {"a.internal.corp.", type_txt, route::passthrough, {}, ""},
        {"static.internal.corp.", type_aaaa, route::passthrough, {}, ""},  // static A only for A
        {"notinternal.corp.", type_a, route::intercept, {proxy}, ""},
        {"internal.corp.evil.", type_a, route::intercept, {proxy}, ""},
        {"exact.example.com.", type_a, route::passthrough, {}, "exact.example.com."},
        {"sub.exact.example.com.", type_a, route::intercept, {proxy}, ""},
        {"api.x.y.net.", type_a, route::passthrough, {}, "api.x.y.net."},  // '*' crosses dots (as Go)
        {"api.net.", type_a, route::intercept, {proxy}, ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.name) + " type " + std::to_string(c.qtype));
        decision d = decide(p, c.name, c.qtype);
        EXPECT_EQ(d.how, c.how);
        EXPECT_EQ(d.answers, c.answers);
        EXPECT_EQ(d.lookup, !c.lookup.empty());
        EXPECT_EQ(d.lookup_name, c.lookup);
    }
}

TEST(DnsCodecPolicy, ProxyIpMustBeIpv4) {
    for (const char* bad : {"", "1.2.3", "::1", "10.0.0.1:53", "proxy.local", "1.2.3.4 "}) {
        auto c = test_config();
        c.proxy_ip = bad;
        auto p = make_policy(c);
        ASSERT_FALSE(p) << bad;
        EXPECT_EQ(p.message(), std::string("invalid proxy_ip (must be IPv4): \"") + bad + "\"");
    }
}

TEST(DnsCodecPolicy, UnusableRecordsAreSkippedWithAWarning) {
    auto c = test_config();
    c.records = {{"a.test", "A", "not-an-ip"}, {"b.test", "A", "2001:db8::1"}, {"c.test", "AAAA", "1.2.3.4"},
                 {"d.test", "A", "192.0.2.4"}};
    std::vector<std::string> warnings;
    auto p = make_policy(c, &warnings);
    ASSERT_TRUE(p) << p.message();
    ASSERT_EQ(p->records.size(), 1u);
    EXPECT_EQ(p->records[0].name, "d.test.");
    ASSERT_EQ(warnings.size(), 3u);
    EXPECT_EQ(warnings[0], "dns.records[0]: value \"not-an-ip\" is not a valid A value; the record never matches");
    EXPECT_EQ(decide(*p, "a.test.", type_a).answers, std::vector<rdata>{a_record(p->proxy_ip)});  // falls through
}

TEST(DnsCodecPolicy, PassthroughPatternsAreNormalised) {
    auto c = test_config();
    c.passthrough = {"*.Corp.Example."};
    auto p = make_policy(c);
    ASSERT_TRUE(p);
    EXPECT_EQ(decide(*p, "a.corp.example.", type_a).how, route::passthrough);
}

// ---- replies on the wire ----------------------------------------------------------------------

namespace {

std::vector<std::uint8_t> run(const std::vector<std::uint8_t>& q, transport t = transport::udp,
                              const lookup_fn& lookup = nullptr) {
    static const policy p = test_policy();
    return answer(q.data(), q.size(), p, lookup, t);
}

}  // namespace

TEST(DnsCodecReply, InterceptAFlagsAndOwnerCase) {
    query_opts o;
    o.id = 0xbeef;
    o.rd = true;
    o.cd = true;
    auto r = parse_reply(run(make_query({{"WwW.Example.COM."}}, o)));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.id, 0xbeef);
    EXPECT_TRUE(r.qr);
    EXPECT_TRUE(r.aa);
    EXPECT_TRUE(r.rd);
    EXPECT_TRUE(r.cd);
    EXPECT_FALSE(r.ra);
    EXPECT_FALSE(r.tc);
    EXPECT_EQ(r.opcode, 0);
    EXPECT_EQ(r.rcode, 0);
    EXPECT_FALSE(r.edns);  // no OPT in the query, none in the reply
    ASSERT_EQ(r.questions, std::vector<std::string>{"WwW.Example.COM."});
    ASSERT_EQ(r.answers.size(), 1u);
    EXPECT_EQ(r.answers[0].owner, "WwW.Example.COM.");
    EXPECT_EQ(r.answers[0].type, type_a);
    EXPECT_EQ(r.answers[0].ttl, 60u);
    EXPECT_EQ(r.answers[0].data, "10.9.8.7");
}

TEST(DnsCodecReply, FlagsCopiedWhenClear) {
    query_opts o;
    o.rd = false;
    o.cd = false;
    auto r = parse_reply(run(make_query({{"a.example."}}, o)));
    ASSERT_TRUE(r.ok);
    EXPECT_FALSE(r.rd);
    EXPECT_FALSE(r.cd);
    EXPECT_TRUE(r.aa);
}

TEST(DnsCodecReply, OtherTypesEmptyNoerror) {
    for (std::uint16_t t : {type_aaaa, type_mx, type_txt, type_https}) {
        auto r = parse_reply(run(make_query({{"a.example.", t}})));
        ASSERT_TRUE(r.ok);
        EXPECT_EQ(r.rcode, 0) << t;
        EXPECT_TRUE(r.aa);
        EXPECT_EQ(r.questions.size(), 1u);
        EXPECT_TRUE(r.answers.empty()) << t;
    }
}

TEST(DnsCodecReply, StaticRecordsOnTheWire) {
    auto r = parse_reply(run(make_query({{"V6.internal.", type_aaaa}})));
    ASSERT_EQ(r.answers.size(), 1u);
    EXPECT_EQ(r.answers[0].owner, "V6.internal.");
    EXPECT_EQ(r.answers[0].data, "2001:db8::1");
    EXPECT_EQ(r.answers[0].ttl, 60u);
    r = parse_reply(run(make_query({{"alias.internal.", type_cname}})));
    ASSERT_EQ(r.answers.size(), 1u);
    EXPECT_EQ(r.answers[0].type, type_cname);
    EXPECT_EQ(r.answers[0].data, "target.example.");
}

TEST(DnsCodecReply, EveryQuestionEchoedAndAnswered) {
    auto r = parse_reply(run(make_query({{"one.example."}, {"two.example.", type_aaaa}, {"api.internal."}})));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.questions, (std::vector<std::string>{"one.example.", "two.example.", "api.internal."}));
    ASSERT_EQ(r.answers.size(), 2u);
    EXPECT_EQ(r.answers[0].owner, "one.example.");
    EXPECT_EQ(r.answers[0].data, "10.9.8.7");
    EXPECT_EQ(r.answers[1].owner, "api.internal.");
    EXPECT_EQ(r.answers[1].data, "192.0.2.1");
}

TEST(DnsCodecReply, PassthroughUsesLookupIpv4sWithTtl60) {
    std::vector<std::string> asked;
    lookup_fn lookup = [&](const std::string& name) -> std::optional<std::vector<ipv4_bytes>> {
        asked.push_back(name);
        if (name == "down.internal.corp.") return std::nullopt;
        return std::vector<ipv4_bytes>{{192, 0, 2, 77}, {192, 0, 2, 78}};
    };
    auto r = parse_reply(run(make_query({{"Up.Internal.Corp."}}), transport::udp, lookup));
    ASSERT_EQ(r.answers.size(), 2u);
    EXPECT_EQ(r.answers[0].owner, "Up.Internal.Corp.");
    EXPECT_EQ(r.answers[0].data, "192.0.2.77");
    EXPECT_EQ(r.answers[1].data, "192.0.2.78");
    EXPECT_EQ(r.answers[1].ttl, 60u);
    r = parse_reply(run(make_query({{"down.internal.corp."}}), transport::udp, lookup));
    EXPECT_EQ(r.rcode, 0);
    EXPECT_TRUE(r.answers.empty());
    r = parse_reply(run(make_query({{"up.internal.corp.", type_aaaa}}), transport::udp, lookup));
    EXPECT_TRUE(r.answers.empty());
    EXPECT_EQ(asked, (std::vector<std::string>{"up.internal.corp.", "down.internal.corp."}));  // no AAAA lookup
}

TEST(DnsCodecReply, OpcodeOtherThanQueryIsNotimp) {
    for (int opcode : {1, 2, 4, 5}) {
        query_opts o;
        o.opcode = opcode;
        auto r = parse_reply(run(make_query({{"a.example."}}, o)));
        ASSERT_TRUE(r.ok);
        EXPECT_EQ(r.opcode, opcode);
        EXPECT_EQ(r.rcode, rcode_notimp);
        EXPECT_FALSE(r.aa);
        EXPECT_TRUE(r.answers.empty());
        EXPECT_EQ(r.questions.size(), 1u);
    }
}

TEST(DnsCodecReply, NoQuestionOrTooManyIsFormerr) {
    auto r = parse_reply(run(make_query({})));
    EXPECT_EQ(r.rcode, rcode_formerr);
    EXPECT_EQ(r.id, 0x1234);
    std::vector<q_spec> many(max_questions + 1, q_spec{"a.example."});
    r = parse_reply(run(make_query(many)));
    EXPECT_EQ(r.rcode, rcode_formerr);
    EXPECT_TRUE(r.questions.empty());
    std::vector<q_spec> most(max_questions, q_spec{"a.example."});
    r = parse_reply(run(make_query(most), transport::tcp));
    EXPECT_EQ(r.rcode, 0);
    EXPECT_EQ(r.answers.size(), max_questions);
}

TEST(DnsCodecReply, EdnsEchoedWithDoBit) {
    query_opts o;
    o.edns_size = 4096;
    o.do_bit = true;
    auto r = parse_reply(run(make_query({{"a.example."}}, o)));
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.edns);
    EXPECT_EQ(r.edns_size, max_udp_payload);
    EXPECT_TRUE(r.do_bit);
    EXPECT_EQ(r.answers.size(), 1u);
    o.edns_version = 1;
    r = parse_reply(run(make_query({{"a.example."}}, o)));
    EXPECT_EQ(r.rcode, rcode_badvers);
    EXPECT_TRUE(r.answers.empty());
}

TEST(DnsCodecReply, MalformedInput) {
    // Too short for a header: dropped.
    const std::vector<std::uint8_t> runt{0x12, 0x34, 0x01, 0x00, 0x00};
    EXPECT_TRUE(run(runt).empty());
    EXPECT_TRUE(run({}).empty());
    // A header that promises a question that is not there: FORMERR with the ID and opcode.
    const std::vector<std::uint8_t> promise{0xab, 0xcd, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0};
    auto r = parse_reply(run(promise));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.id, 0xabcd);
    EXPECT_TRUE(r.qr);
    EXPECT_TRUE(r.rd);
    EXPECT_TRUE(r.cd);
    EXPECT_FALSE(r.aa);
    EXPECT_EQ(r.rcode, rcode_formerr);
    EXPECT_EQ(r.size, 12u);
    // A label running past the end, and a compression pointer loop.
    auto q = make_query({{"a.example."}});
    std::vector<std::uint8_t> cut(q.begin(), q.begin() + 16);
    EXPECT_EQ(parse_reply(run(cut)).rcode, rcode_formerr);
    std::vector<std::uint8_t> loop{0x00, 0x07, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    EXPECT_EQ(parse_reply(run(loop)).rcode, rcode_formerr);
    // A response (QR=1) is never answered, parseable or not.
    auto resp = make_query({{"a.example."}});
    resp[2] |= 0x80;
    EXPECT_TRUE(run(resp).empty());
    EXPECT_TRUE(run(std::vector<std::uint8_t>(12, 0xff)).empty());
}

// ---- truncation ---------------------------------------------------------------------------------

namespace {

policy many_aaaa_policy(int n) {
    auto c = test_config();
    c.records.clear();
    for (int i = 0; i < n; ++i) c.records.push_back({"many.test", "AAAA", "2001:db8::" + std::to_string(i + 1)});
    auto p = make_policy(c);
    EXPECT_TRUE(p);
    return *p;
}

}  // namespace

TEST(DnsCodecTruncation, UdpOver512IsTruncatedTcpIsNot) {
    const policy p = many_aaaa_policy(40);  // 40 × 28 B of answers: over 512, under 1232
    auto q = make_query({{"many.test.", type_aaaa}});
    auto udp = answer(q.data(), q.size(), p, nullptr, transport::udp);
    auto r = parse_reply(udp);
    ASSERT_TRUE(r.ok);
    EXPECT_LE(udp.size(), 512u);
    EXPECT_TRUE(r.tc);
    EXPECT_TRUE(r.answers.empty());
    EXPECT_EQ(r.questions, std::vector<std::string>{"many.test."});
    EXPECT_EQ(r.id, 0x1234);

    auto tcp = answer(q.data(), q.size(), p, nullptr, transport::tcp);
    r = parse_reply(tcp);
    EXPECT_GT(tcp.size(), 512u);
    EXPECT_FALSE(r.tc);
    EXPECT_EQ(r.answers.size(), 40u);

    // EDNS raises the UDP limit to what the client advertised, capped at 1232.
    query_opts o;
    o.edns_size = 4096;
    auto qe = make_query({{"many.test.", type_aaaa}}, o);
    auto big = answer(qe.data(), qe.size(), p, nullptr, transport::udp);
    r = parse_reply(big);
    EXPECT_FALSE(r.tc);
    EXPECT_EQ(r.answers.size(), 40u);
    EXPECT_LE(big.size(), max_udp_payload);

    const policy p60 = many_aaaa_policy(60);  // over 1232 even with EDNS
    big = answer(qe.data(), qe.size(), p60, nullptr, transport::udp);
    r = parse_reply(big);
    EXPECT_TRUE(r.tc);
    EXPECT_TRUE(r.edns);
    EXPECT_TRUE(r.answers.empty());
    EXPECT_LE(big.size(), max_udp_payload);

    o.edns_size = 100;  // below 512 means 512
    auto qs = make_query({{"many.test.", type_aaaa}}, o);
    EXPECT_TRUE(parse_reply(answer(qs.data(), qs.size(), p, nullptr, transport::udp)).tc);
}

// ---- robustness -----------------------------------------------------------------------------

// 20,000 random and mutated messages: no crash (ASan/UBSan builds check memory), and every reply
// is a well-formed response to the same ID within the transport's limit.
TEST(DnsCodecRobustness, RandomAndMutatedPackets) {
    const policy p = test_policy();
    lookup_fn lookup = [](const std::string&) -> std::optional<std::vector<ipv4_bytes>> {
        return std::vector<ipv4_bytes>{{192, 0, 2, 1}};
    };
    query_opts edns;
    edns.edns_size = 1400;
    edns.do_bit = true;
    query_opts notify;
    notify.opcode = 4;
    const std::vector<std::vector<std::uint8_t>> seeds = {
        make_query({{"a.example."}}),
        make_query({{"x.internal.corp."}, {"x.internal.corp.", type_aaaa}, {"api.internal."}}, edns),
        make_query({{"alias.internal.", type_cname}, {"v6.internal.", type_aaaa}}),
        make_query({{"www.exact.example.com.", type_https}}, notify),
    };
    std::mt19937 rng(20240611);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    std::size_t answered = 0;
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> msg;
        if (i % 4 == 0) {
            msg.resize(pick(300));
            for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
        } else {
            msg = seeds[pick(seeds.size())];
            const std::size_t edits = 1 + pick(6);
            for (std::size_t e = 0; e < edits && !msg.empty(); ++e) {
                switch (pick(5)) {
                    case 0: msg[pick(msg.size())] ^= static_cast<std::uint8_t>(1u << pick(8)); break;
                    case 1: msg[pick(msg.size())] = static_cast<std::uint8_t>(rng()); break;
                    case 2: msg.resize(pick(msg.size() + 1)); break;
                    case 3: msg.insert(msg.begin() + static_cast<long>(pick(msg.size() + 1)),
                                       static_cast<std::uint8_t>(rng())); break;
                    case 4:  // header counts: where parsers go wrong
                        if (msg.size() >= 12) msg[4 + pick(8)] = static_cast<std::uint8_t>(rng());
                        break;
                }
            }
            if (!msg.empty() && pick(2) == 0) msg[2] &= 0x7f;  // mostly queries, so most get answered
        }
        const transport t = i % 3 == 0 ? transport::tcp : transport::udp;
        auto out = answer(msg.data(), msg.size(), p, lookup, t);
        if (out.empty()) continue;
        ++answered;
        ASSERT_GE(msg.size(), 12u) << "answered a message without a header, case " << i;
        auto r = parse_reply(out);
        ASSERT_TRUE(r.ok) << "unparseable reply, case " << i;
        EXPECT_TRUE(r.qr);
        EXPECT_EQ(r.id, (msg[0] << 8) | msg[1]);
        EXPECT_LE(out.size(), t == transport::udp ? max_udp_payload : max_tcp_message);
        if (t == transport::udp && !r.edns) {
            EXPECT_LE(out.size(), 512u);
        }
    }
    EXPECT_GT(answered, 5000u);  // the mutations did reach the decision code
}

}  // namespace iron::dns::testing
