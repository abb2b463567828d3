// DNS message handling on top of ldns. Every ldns call that can fail is checked: a failure while
// parsing means FORMERR (or a drop), a failure while building means "no reply"; never a crash.
#include "dns/codec.hpp"

#include <arpa/inet.h>
// ldns/common.h #defines bool, true and false (as _Bool, 1 and 0) unless stdbool.h came first.
#include <stdbool.h>
#include <ldns/ldns.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/host_glob.hpp"

namespace iron::dns {

namespace {

struct pkt_free {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using pkt_ptr = std::unique_ptr<ldns_pkt, pkt_free>;

struct rr_free {
    void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
using rr_ptr = std::unique_ptr<ldns_rr, rr_free>;

struct rdf_free {
    void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using rdf_ptr = std::unique_ptr<ldns_rdf, rdf_free>;

constexpr std::size_t header_size = 12;

// Go's %q for the messages users already know (ASCII subset: enough for config values).
std::string go_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string absolute(std::string name) {
    if (name.empty() || name.back() != '.') name += '.';
    return name;
}

std::vector<std::uint8_t> to_wire(const ldns_pkt* p) {
    std::uint8_t* wire = nullptr;
    std::size_t n = 0;
    if (ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK || !wire) {
        std::free(wire);
        return {};
    }
    std::vector<std::uint8_t> out(wire, wire + n);
    std::free(wire);  // ldns allocates with malloc
    return out;
}

// A reply to a message we could not parse: the header is all we know, so that is all we echo.
// AA stays 0: an error is not an authoritative answer.
std::vector<std::uint8_t> header_only_reply(const std::uint8_t* wire, std::uint16_t rcode) {
    pkt_ptr r(ldns_pkt_new());
    if (!r) return {};
    ldns_pkt_set_id(r.get(), LDNS_ID_WIRE(wire));
    ldns_pkt_set_opcode(r.get(), static_cast<ldns_pkt_opcode>(LDNS_OPCODE_WIRE(wire)));
    ldns_pkt_set_qr(r.get(), true);
    ldns_pkt_set_rd(r.get(), LDNS_RD_WIRE(wire) != 0);
    ldns_pkt_set_cd(r.get(), LDNS_CD_WIRE(wire) != 0);
    ldns_pkt_set_rcode(r.get(), static_cast<std::uint8_t>(rcode));
    return to_wire(r.get());
}

// One answer record. Null when ldns cannot allocate or the data does not encode.
rr_ptr make_rr(const ldns_rdf* owner, const rdata& d) {
    rdf_ptr value;
    if (d.type == type_a) value.reset(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, d.ip.data()));
    else if (d.type == type_aaaa) value.reset(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, d.ip.data()));
    else if (d.type == type_cname) value.reset(ldns_dname_new_frm_str(d.target.c_str()));
    rdf_ptr name(owner ? ldns_rdf_clone(owner) : nullptr);
    rr_ptr rr(ldns_rr_new());
    if (!value || !name || !rr) return nullptr;
    ldns_rr_set_owner(rr.get(), name.release());
    ldns_rr_set_type(rr.get(), static_cast<ldns_rr_type>(d.type));
    ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);  // Go answers IN whatever the question's class
    ldns_rr_set_ttl(rr.get(), answer_ttl);
    if (!ldns_rr_push_rdf(rr.get(), value.get())) return nullptr;
    value.release();
    return rr;
}

}  // namespace

struct query::impl {
    pkt_ptr pkt;
    std::vector<question> questions;
};

query::query(std::shared_ptr<const impl> p) : p_(std::move(p)) {}
std::uint16_t query::id() const { return ldns_pkt_id(p_->pkt.get()); }
std::uint8_t query::opcode() const { return static_cast<std::uint8_t>(ldns_pkt_get_opcode(p_->pkt.get())); }
bool query::edns() const { return ldns_pkt_edns(p_->pkt.get()); }
std::uint8_t query::edns_version() const { return ldns_pkt_edns_version(p_->pkt.get()); }
const std::vector<question>& query::questions() const { return p_->questions; }

std::size_t query::udp_limit() const {
    if (!edns()) return min_udp_payload;
    // RFC 6891 §6.2.3: values below 512 mean 512. Above 1232 we cap: fragments get lost.
    return std::clamp<std::size_t>(ldns_pkt_edns_udp_size(p_->pkt.get()), min_udp_payload, max_udp_payload);
}

bool plan::needs_lookup() const {
    return std::any_of(decisions.begin(), decisions.end(), [](const decision& d) { return d.lookup; });
}

rdata a_record(const ipv4_bytes& ip) {
    rdata d;
    d.type = type_a;
    std::copy(ip.begin(), ip.end(), d.ip.begin());
    return d;
}

result<policy> make_policy(const config::dns_config& cfg, std::vector<std::string>* warnings) {
    policy p;
    in_addr v4{};
    if (::inet_pton(AF_INET, cfg.proxy_ip.c_str(), &v4) != 1)
        return make_error("invalid proxy_ip (must be IPv4): " + go_quote(cfg.proxy_ip));
    std::memcpy(p.proxy_ip.data(), &v4, 4);

    for (std::size_t i = 0; i < cfg.records.size(); ++i) {
        const auto& r = cfg.records[i];
        static_record out;
        out.name = absolute(core::normalize_host(r.name));
        bool ok = false;
        if (r.type == "A") {
            out.data.type = type_a;
            ok = ::inet_pton(AF_INET, r.value.c_str(), out.data.ip.data()) == 1;
        } else if (r.type == "AAAA") {
            out.data.type = type_aaaa;
            ok = ::inet_pton(AF_INET6, r.value.c_str(), out.data.ip.data()) == 1;
        } else if (r.type == "CNAME") {
            out.data.type = type_cname;
            out.data.target = absolute(r.value);
            rdf_ptr check(ldns_dname_new_frm_str(out.data.target.c_str()));
            ok = check != nullptr;
        }
        if (!ok) {
            if (warnings)
                warnings->push_back("dns.records[" + std::to_string(i) + "]: value " + go_quote(r.value) +
                                    " is not a valid " + r.type + " value; the record never matches");
            continue;
        }
        p.records.push_back(std::move(out));
    }
    // Normalised like the question names (lower-case, no trailing dot): "API.Corp." would
    // otherwise never match.
    for (const auto& g : cfg.passthrough) p.passthrough.add(core::normalize_host(g));
    return p;
}

std::string glob_name(std::string_view name) { return core::normalize_host(name); }

decision decide(const policy& p, std::string_view name, std::uint16_t qtype) {
    decision d;
    const std::string host = glob_name(name);
    const std::string fqdn = host + ".";
    // 1. Static records: exact name and type. A type mismatch falls through, as in Go.
    for (const auto& r : p.records)
        if (r.data.type == qtype && r.name == fqdn) d.answers.push_back(r.data);
    if (!d.answers.empty()) {
        d.how = route::static_record;
        return d;
    }
    // 2. Passthrough: only A is looked up and answered; other types get an empty NOERROR.
    if (p.passthrough.matches_any(host)) {
        d.how = route::passthrough;
        if (qtype == type_a) {
            d.lookup = true;
            d.lookup_name = fqdn;
        }
        return d;
    }
    // 3. Intercept: A ⇒ the proxy; everything else empty, which keeps clients on IPv4 (and so on
    //    the proxy) and off HTTPS/SVCB hints.
    d.how = route::intercept;
    if (qtype == type_a) d.answers.push_back(a_record(p.proxy_ip));
    return d;
}

void fail_plan(plan& pl, std::uint16_t rcode) {
    pl.rcode = rcode;
    pl.decisions.clear();
}

parsed make_plan(const std::uint8_t* data, std::size_t len, const policy& p) {
    parsed out;
    if (!data || len < header_size) return out;  // no ID to answer to
    if (LDNS_QR_WIRE(data)) return out;           // a response: never answer one
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, data, len) != LDNS_STATUS_OK || !raw) {
        // ldns frees its partial packet on failure.
        out.reply = header_only_reply(data, rcode_formerr);
        return out;
    }
    auto im = std::make_shared<query::impl>();
    im->pkt.reset(raw);
    const ldns_rr_list* qs = ldns_pkt_question(raw);
    const std::size_t qcount = qs ? ldns_rr_list_rr_count(qs) : 0;
    for (std::size_t i = 0; i < qcount && i <= max_questions; ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(qs, i);
        const ldns_rdf* owner = rr ? ldns_rr_owner(rr) : nullptr;
        char* text = owner ? ldns_rdf2str(owner) : nullptr;
        if (!text) {
            out.reply = header_only_reply(data, rcode_formerr);
            return out;
        }
        im->questions.push_back({text, static_cast<std::uint16_t>(ldns_rr_get_type(rr)),
                                 static_cast<std::uint16_t>(ldns_rr_get_class(rr))});
        std::free(text);
    }
    plan pl{query(std::move(im)), rcode_noerror, {}};
    if (pl.q.opcode() != LDNS_PACKET_QUERY) {
        pl.rcode = rcode_notimp;
    } else if (pl.q.edns() && pl.q.edns_version() > 0) {
        pl.rcode = rcode_badvers;  // RFC 6891 §6.1.3
    } else if (qcount == 0 || qcount > max_questions) {
        pl.rcode = rcode_formerr;
    } else {
        for (const auto& q : pl.q.questions()) pl.decisions.push_back(decide(p, q.name, q.qtype));
    }
    out.todo.emplace(std::move(pl));
    return out;
}

namespace {

std::vector<std::uint8_t> encode(const plan& pl, bool with_answers, bool with_questions, bool tc) {
    const ldns_pkt* q = pl.q.get().pkt.get();
    pkt_ptr r(ldns_pkt_new());
    if (!r) return {};
    ldns_pkt_set_id(r.get(), ldns_pkt_id(q));
    ldns_pkt_set_opcode(r.get(), ldns_pkt_get_opcode(q));
    ldns_pkt_set_qr(r.get(), true);
    ldns_pkt_set_aa(r.get(), pl.rcode == rcode_noerror);
    ldns_pkt_set_tc(r.get(), tc);
    ldns_pkt_set_rd(r.get(), ldns_pkt_rd(q));
    ldns_pkt_set_cd(r.get(), ldns_pkt_cd(q));
    ldns_pkt_set_ra(r.get(), false);  // Go compat: we do not recurse for arbitrary clients
    ldns_pkt_set_rcode(r.get(), static_cast<std::uint8_t>(pl.rcode & 0x0f));
    if (ldns_pkt_edns(q)) {
        // RFC 6891: answer EDNS with EDNS; RFC 3225: copy DO.
        ldns_pkt_set_edns_udp_size(r.get(), max_udp_payload);
        ldns_pkt_set_edns_version(r.get(), 0);
        ldns_pkt_set_edns_do(r.get(), ldns_pkt_edns_do(q));
        ldns_pkt_set_edns_extended_rcode(r.get(), static_cast<std::uint8_t>(pl.rcode >> 4));
    }
    // FORMERR echoes no question: the section is what could not be understood.
    if (with_questions && pl.rcode != rcode_formerr) {
        const ldns_rr_list* qs = ldns_pkt_question(q);
        for (std::size_t i = 0; qs && i < ldns_rr_list_rr_count(qs); ++i) {
            rr_ptr c(ldns_rr_clone(ldns_rr_list_rr(qs, i)));
            if (!c || !ldns_pkt_push_rr(r.get(), LDNS_SECTION_QUESTION, c.get())) return {};
            c.release();
        }
    }
    if (with_answers && pl.rcode == rcode_noerror) {
        const ldns_rr_list* qs = ldns_pkt_question(q);
        for (std::size_t i = 0; i < pl.decisions.size() && qs && i < ldns_rr_list_rr_count(qs); ++i) {
            const ldns_rdf* owner = ldns_rr_owner(ldns_rr_list_rr(qs, i));
            for (const auto& d : pl.decisions[i].answers) {
                rr_ptr rr = make_rr(owner, d);
                if (!rr || !ldns_pkt_push_rr(r.get(), LDNS_SECTION_ANSWER, rr.get())) return {};
                rr.release();
            }
        }
    }
    return to_wire(r.get());
}

}  // namespace

std::vector<std::uint8_t> build_reply(const plan& pl, std::size_t limit) {
    auto full = encode(pl, true, true, false);
    if (full.size() <= limit) return full;
    // RFC 2181 §9: TC=1 and no partial RRset; the client retries over TCP. The questions stay
    // when they fit, so the client can match the reply to its query.
    auto no_answers = encode(pl, false, true, true);
    if (!no_answers.empty() && no_answers.size() <= limit) return no_answers;
    auto header_only = encode(pl, false, false, true);
    if (header_only.size() <= limit) return header_only;
    return {};
}

std::vector<std::uint8_t> answer(const std::uint8_t* data, std::size_t len, const policy& p, const lookup_fn& lookup,
                                 transport t) {
    auto pr = make_plan(data, len, p);
    if (!pr.todo) return std::move(pr.reply);
    plan& pl = *pr.todo;
    for (auto& d : pl.decisions) {
        if (!d.lookup) continue;
        std::optional<std::vector<ipv4_bytes>> ips;
        if (lookup) ips = lookup(d.lookup_name);
        if (ips)
            for (const auto& ip : *ips) d.answers.push_back(a_record(ip));
    }
    return build_reply(pl, t == transport::udp ? pl.q.udp_limit() : max_tcp_message);
}

}  // namespace iron::dns
