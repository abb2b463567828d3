// libFuzzer target for dns::codec: every received DNS message goes through make_plan/build_reply,
// so any input must give either no reply or a well-formed response to the same ID within the
// transport's size limit — and never a crash, leak or undefined behaviour.
//
// Input: one DNS message as received over UDP or TCP (the TCP length prefix already removed).
// Built by scripts/fuzz.sh with the other targets (tests/fuzz/CMakeLists.txt); the reply is
// checked by decoding it again with ldns, an independent implementation.
// ldns/common.h #defines bool, true and false (as _Bool, 1 and 0) unless stdbool.h came first.
#include <stdbool.h>
#include <ldns/ldns.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "dns/codec.hpp"

namespace {

const iron::dns::policy& fuzz_policy() {
    static const iron::dns::policy p = [] {
        iron::config::dns_config c;
        c.proxy_ip = "10.9.8.7";
        c.records = {{"api.internal", "A", "192.0.2.1"},
                     {"v6.internal", "AAAA", "2001:db8::1"},
                     {"alias.internal", "CNAME", "target.example"}};
        for (int i = 0; i < 50; ++i) c.records.push_back({"many.test", "AAAA", "2001:db8::" + std::to_string(i + 1)});
        c.passthrough = {"*.internal.corp", "api.*.net"};
        auto r = iron::dns::make_policy(c);
        if (!r) std::abort();
        return *r;
    }();
    return p;
}

void check(const std::uint8_t* data, std::size_t size, const std::vector<std::uint8_t>& out, std::size_t limit) {
    if (out.empty()) return;
    if (size < 12 || out.size() > limit) std::abort();
    ldns_pkt* p = nullptr;
    if (ldns_wire2pkt(&p, out.data(), out.size()) != LDNS_STATUS_OK || !p) std::abort();
    const bool ok = ldns_pkt_qr(p) && ldns_pkt_id(p) == ((data[0] << 8) | data[1]);
    ldns_pkt_free(p);
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace iron::dns;
    // The name's length decides whether the lookup "succeeds", so both paths run without any I/O.
    lookup_fn lookup = [&](const std::string& name) -> std::optional<std::vector<ipv4_bytes>> {
        if (name.size() % 2) return std::nullopt;
        return std::vector<ipv4_bytes>{{192, 0, 2, 7}, {192, 0, 2, 8}};
    };
    check(data, size, answer(data, size, fuzz_policy(), lookup, transport::udp), max_udp_payload);
    check(data, size, answer(data, size, fuzz_policy(), lookup, transport::tcp), max_tcp_message);
    return 0;
}
