// What the client is told when the proxy answers itself: the RFC 9209 error type for every failure
// kind and cause, the field's RFC 8941 syntax (sf-token, sf-string escaping, printable ASCII, the
// length cap), verdicts naming the host, and the bodies under proxy.deny_body.
#include "exchange/proxy_status.hpp"

#include <string>

#include <gtest/gtest.h>

namespace iron::exchange {
namespace {

std::string type_of(const failure& f) { return status_of(f).error; }

failure dial(error_kind cause) { return upstream_failure(failure_kind::dial_failed, "dial tcp: x", cause); }

TEST(proxy_status, every_client_side_refusal_is_an_http_request_error) {
    for (auto k : {failure_kind::malformed, failure_kind::not_implemented, failure_kind::method_not_allowed,
                   failure_kind::body_timeout, failure_kind::too_large})
        EXPECT_EQ(type_of(client_failure(k, "why")), "http_request_error");
}

TEST(proxy_status, proxy_and_timeout_failures) {
    EXPECT_EQ(type_of(proxy_failure(failure_kind::loop, "loop detected: x")), "proxy_loop_detected");
    EXPECT_EQ(type_of(upstream_failure(failure_kind::response_timeout, "t")), "http_response_timeout");
    EXPECT_EQ(type_of(upstream_failure(failure_kind::response_too_large, "t")), "http_response_body_size");
}

TEST(proxy_status, a_failed_dial_names_its_cause) {
    EXPECT_EQ(type_of(dial(error_kind::address_denied)), "destination_ip_prohibited");
    EXPECT_EQ(type_of(dial(error_kind::dns_timeout)), "dns_timeout");
    EXPECT_EQ(type_of(dial(error_kind::dns_other)), "dns_error");
    EXPECT_EQ(type_of(dial(error_kind::connect_refused)), "connection_refused");
    EXPECT_EQ(type_of(dial(error_kind::connect_timeout)), "connection_timeout");
    EXPECT_EQ(type_of(dial(error_kind::unreachable)), "destination_ip_unroutable");
    EXPECT_EQ(type_of(dial(error_kind::tls_certificate)), "tls_certificate_error");
    EXPECT_EQ(type_of(dial(error_kind::tls_handshake)), "tls_protocol_error");
    EXPECT_EQ(type_of(dial(error_kind::connection_closed)), "connection_terminated");
    EXPECT_EQ(type_of(dial(error_kind::other)), "destination_unavailable");
}

TEST(proxy_status, dns_errors_carry_the_rcode) {
    EXPECT_EQ(status_of(dial(error_kind::dns_no_such_host)).params, "; rcode=\"NXDOMAIN\"");
    EXPECT_EQ(status_of(dial(error_kind::dns_no_address)).params, "; rcode=\"NOERROR\"");
    EXPECT_EQ(status_of(dial(error_kind::dns_server_failure)).params, "; rcode=\"SERVFAIL\"");
    EXPECT_EQ(status_of(dial(error_kind::dns_refused)).params, "; rcode=\"REFUSED\"");
    EXPECT_EQ(status_of(dial(error_kind::dns_other)).params, "");
    EXPECT_EQ(status_of(upstream_failure(failure_kind::dial_failed, "dial tcp: lookup nx.test: no such host",
                                         error_kind::dns_no_such_host))
                  .field_value(),
              "iron-proxy; error=dns_error; rcode=\"NXDOMAIN\"; details=\"dial tcp: lookup nx.test: no such host\"");
}

TEST(proxy_status, a_broken_origin_before_any_response) {
    auto broken = [](error_kind c) { return type_of(upstream_failure(failure_kind::broken, "x", c)); };
    EXPECT_EQ(broken(error_kind::connection_closed), "connection_terminated");
    EXPECT_EQ(broken(error_kind::response_incomplete), "http_response_incomplete");
    EXPECT_EQ(broken(error_kind::response_too_large), "http_response_header_section_size");
    EXPECT_EQ(broken(error_kind::protocol_error), "http_protocol_error");
    EXPECT_EQ(broken(error_kind::other), "http_protocol_error");
}

TEST(proxy_status, details_fall_back_to_the_reply_text) {
    EXPECT_EQ(status_of(upstream_failure(failure_kind::broken, "")).details, "bad gateway");
}

TEST(proxy_status, details_are_a_valid_sf_string) {
    EXPECT_EQ(sf_string("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
    EXPECT_EQ(sf_string("tab\there\r\nnul"), "\"tab?here??nul\"");
    EXPECT_EQ(sf_string("caf\xC3\xA9"), "\"caf??\"");
    const std::string long_reason(500, 'a');
    const std::string quoted = sf_string(long_reason);
    EXPECT_EQ(quoted.size(), max_reason_chars + 3 + 2);
    EXPECT_EQ(quoted.substr(quoted.size() - 4), "...\"");
}

TEST(proxy_status, no_details_no_details_parameter) {
    proxy_status st{"http_request_error", {}, {}};
    EXPECT_EQ(st.field_value(), "iron-proxy; error=http_request_error");
}

pipeline::phase_result decided(pipeline::verdict v, std::string by) { return {std::move(v), std::move(by)}; }

TEST(proxy_status, a_denial_names_the_reason_and_the_host) {
    auto st = status_of(decided(pipeline::verdict::reject(403, "host not in allowlist"), "allowlist"), "evil.test");
    EXPECT_EQ(st.field_value(), "iron-proxy; error=http_request_denied; details=\"host not in allowlist: evil.test\"");
    auto unexplained = status_of(decided(pipeline::verdict::reject(403), "secrets"), "api.test");
    EXPECT_EQ(unexplained.details, "denied by transform secrets: api.test");
}

TEST(proxy_status, a_failing_transform_does_not_leak_its_message) {
    auto st = status_of(decided(pipeline::verdict::fail("transform secrets request: value of \"TOKEN\" bad"),
                                "secrets"),
                        "api.test");
    EXPECT_EQ(st.error, std::string("proxy_internal_error"));
    EXPECT_EQ(st.details, "transform secrets failed");
}

TEST(proxy_status, a_failing_transform_says_why_when_it_gave_a_reason) {
    pipeline::verdict v = pipeline::verdict::fail("calling 127.0.0.1:9: deadline exceeded after 5s");
    v.reason = "transform service deadline exceeded";
    auto st = status_of(decided(v, "policy"), "api.test");
    EXPECT_EQ(st.details, "transform policy failed: transform service deadline exceeded");
}

TEST(proxy_status, a_denial_keeps_an_empty_body_by_default) {
    auto r = reply_to(decided(pipeline::verdict::reject(403, "host not in allowlist"), "allowlist"), "evil.test", false);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.headers.get("Content-Type").value_or(""), "text/plain");
    EXPECT_EQ(r.headers.get("Proxy-Status").value_or(""),
              "iron-proxy; error=http_request_denied; details=\"host not in allowlist: evil.test\"");
}

TEST(proxy_status, deny_body_reason_puts_one_line_in_the_body) {
    auto r = reply_to(decided(pipeline::verdict::reject(403, "host not in allowlist"), "allowlist"), "evil.test", true);
    EXPECT_EQ(r.body, "iron-proxy: host not in allowlist: evil.test\n");
    const auto f = upstream_failure(failure_kind::dial_failed, "dial tcp: lookup x.test: no such host",
                                    error_kind::dns_no_such_host);
    auto e = reply_to(f, settle(f, false), true);
    EXPECT_EQ(e.status, 502);
    EXPECT_EQ(e.body, "iron-proxy: dial tcp: lookup x.test: no such host\n");
    EXPECT_EQ(e.headers.get("Content-Type").value_or(""), "text/plain; charset=utf-8");
}

TEST(proxy_status, an_error_keeps_the_go_text_by_default) {
    const auto f = upstream_failure(failure_kind::response_timeout, "timeout awaiting response headers");
    auto r = reply_to(f, settle(f, false), false);
    EXPECT_EQ(r.status, 504);
    EXPECT_EQ(r.body, "gateway timeout\n");
    EXPECT_EQ(r.headers.get("X-Content-Type-Options").value_or(""), "nosniff");
    EXPECT_EQ(r.headers.get("Proxy-Status").value_or(""),
              "iron-proxy; error=http_response_timeout; details=\"timeout awaiting response headers\"");
}

TEST(proxy_status, a_transform_body_and_its_headers_are_kept_without_framing_fields) {
    auto v = pipeline::verdict::reject(451, "blocked");
    v.body = "custom";
    v.headers.add("Content-Length", "99");
    v.headers.add("X-Policy", "p1");
    auto r = reply_to(decided(std::move(v), "t"), "h.test", true);
    EXPECT_EQ(r.status, 451);
    EXPECT_EQ(r.body, "custom");
    EXPECT_FALSE(r.headers.contains("Content-Length"));
    EXPECT_EQ(r.headers.get("X-Policy").value_or(""), "p1");
}

}  // namespace
}  // namespace iron::exchange
