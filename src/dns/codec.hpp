#pragma once
// The DNS server's message handling (Go's answers, with the improvements listed below), no I/O:
// bytes in, a decision per question, bytes out. The server (server.hpp) adds sockets and the
// asynchronous passthrough lookups between `make_plan` and `build_reply`; tests and the fuzzer drive
// the same steps synchronously through `answer`.
//
// Wire parsing and building go through ldns (never hand-roll DNS messages); ldns stays
// out of this header.
//
// What a reply looks like (Go compatible unless marked):
//   * same ID and opcode, QR=1, AA=1, RD and CD copied, RA=0, TTL 60 on every synthesised record,
//     owner name exactly as asked (original case);
//   * every question is echoed and answered (Go echoed only the first);
//   * malformed message: FORMERR when the 12-byte header can be read, nothing otherwise; a message
//     with QR=1 is never answered (it is someone's response: answering could start a loop);
//   * improvements: EDNS(0) is echoed (payload 1232, DO copied; version > 0 ⇒ BADVERS); an opcode
//     other than QUERY ⇒ NOTIMP; no question or more than `max_questions` ⇒ FORMERR; a UDP reply
//     larger than the client's limit (512, or its EDNS size capped at 1232) is sent with TC=1 and
//     no answers so the client retries over TCP.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/host_glob_set.hpp"
#include "core/result.hpp"

namespace iron::dns {

// RR types and response codes we use (RFC 1035, 3596, 6891).
inline constexpr std::uint16_t type_a = 1;
inline constexpr std::uint16_t type_cname = 5;
inline constexpr std::uint16_t type_aaaa = 28;
inline constexpr std::uint16_t rcode_noerror = 0;
inline constexpr std::uint16_t rcode_formerr = 1;
inline constexpr std::uint16_t rcode_servfail = 2;
inline constexpr std::uint16_t rcode_notimp = 4;
inline constexpr std::uint16_t rcode_badvers = 16;  // extended: needs EDNS

inline constexpr std::uint32_t answer_ttl = 60;
inline constexpr std::size_t max_questions = 32;     // real clients send one; bounds work per message
inline constexpr std::size_t min_udp_payload = 512;  // RFC 1035
inline constexpr std::size_t max_udp_payload = 1232; // DNS flag day 2020: no IP fragmentation
inline constexpr std::size_t max_tcp_message = 65535;

using ipv4_bytes = std::array<std::uint8_t, 4>;

// One record's data.
struct rdata {
    std::uint16_t type = 0;              // type_a, type_aaaa or type_cname
    std::array<std::uint8_t, 16> ip{};   // A: the first 4 bytes; AAAA: all 16
    std::string target;                  // CNAME: absolute name ("target.example.")
    friend bool operator==(const rdata&, const rdata&) = default;
};
rdata a_record(const ipv4_bytes& ip);

struct static_record {
    std::string name;  // lower-case, absolute ("api.internal.")
    rdata data;
};

// What the server answers with, prepared once from config::dns_config.
struct policy {
    ipv4_bytes proxy_ip{};
    std::vector<static_record> records;
    core::host_glob_set passthrough;  // host globs, lower-cased, trailing dot stripped
};

// Errors: `invalid proxy_ip (must be IPv4): "x"` (Go's message). A static record whose value does
// not parse for its type can never match (as in Go, it falls through); it is skipped and described in
// `warnings` (if given) so start-up can say so.
result<policy> make_policy(const config::dns_config& cfg, std::vector<std::string>* warnings = nullptr);

// Go's precedence, per question: static record, then passthrough, then intercept. `name` is the
// question name in presentation form, any case, with or without the trailing dot.
enum class route { static_record, passthrough, intercept };
struct decision {
    route how = route::intercept;
    std::vector<rdata> answers;  // complete, except for a passthrough lookup (filled by the caller)
    bool lookup = false;         // passthrough + qtype A: resolve `lookup_name`, answer its IPv4s
    std::string lookup_name;     // lower-case, absolute: no search-list expansion upstream
};
decision decide(const policy& p, std::string_view name, std::uint16_t qtype);

// Lower-case and strip one trailing dot: the form passthrough globs are matched against.
std::string glob_name(std::string_view name);

struct question {
    std::string name;  // presentation form exactly as asked, absolute ("Api.Example.com.")
    std::uint16_t qtype = 0;
    std::uint16_t qclass = 0;
};

// A query that parsed. Owns the ldns packet (the reply clones its question names from it).
class query {
public:
    struct impl;
    explicit query(std::shared_ptr<const impl> p);
    std::uint16_t id() const;
    std::uint8_t opcode() const;
    bool edns() const;
    std::uint8_t edns_version() const;
    // The largest UDP reply this client accepts: 512, or its EDNS size clamped to [512, 1232].
    std::size_t udp_limit() const;
    const std::vector<question>& questions() const;
    const impl& get() const { return *p_; }

private:
    std::shared_ptr<const impl> p_;
};

// What a message needs, before any lookup.
struct plan {
    query q;
    std::uint16_t rcode = rcode_noerror;
    std::vector<decision> decisions;  // one per question when rcode is NOERROR, else empty
    bool needs_lookup() const;
};

// The first step for every received message: a plan, or a reply to send now (FORMERR for a
// malformed message whose header is readable), or nothing (drop: too short, or a response).
struct parsed {
    std::optional<plan> todo;
    std::vector<std::uint8_t> reply;  // when !todo: empty = drop
};
parsed make_plan(const std::uint8_t* data, std::size_t len, const policy& p);

// Turn a plan whose lookups are filled in into a reply, truncating (TC=1) above `limit` bytes:
// q.udp_limit() over UDP, max_tcp_message over TCP. Empty only if ldns could not allocate.
std::vector<std::uint8_t> build_reply(const plan& pl, std::size_t limit);

// Answer the plan with `rcode` instead (SERVFAIL when the server is overloaded): questions
// echoed, no answers, no lookups.
void fail_plan(plan& pl, std::uint16_t rcode);

// The whole exchange, synchronously: for tests, the fuzzer and tools. `lookup` returns a
// passthrough name's IPv4 addresses, or nothing when the lookup failed (⇒ empty NOERROR).
using lookup_fn = std::function<std::optional<std::vector<ipv4_bytes>>(const std::string& name)>;
enum class transport { udp, tcp };
std::vector<std::uint8_t> answer(const std::uint8_t* data, std::size_t len, const policy& p, const lookup_fn& lookup,
                                 transport t = transport::udp);

}  // namespace iron::dns
