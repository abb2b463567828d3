// The request path's error model: what settle() tells the client and writes in the record for
// every failure kind, before and after the response started, and the phase helpers that fill
// the record (record_failure, record_verdict), check the target and pick the upstream.
#include "exchange/failure.hpp"

#include <string>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "exchange/phases.hpp"
#include "support/test_proxy.hpp"

namespace iron::exchange {
namespace {

namespace act = audit::action;

struct settle_case {
    failure_kind kind;
    // Before the client saw a response head.
    const char* action;
    int status;
    bool reply;
    const char* reply_text;  // nullptr: the failure's detail is the reply text
    // After: no reply is ever possible; the status recorded (0 keeps the one the client saw).
    int status_after;
};

// One row per failure kind: a new kind must get a row (the switch in settle() has no default).
const settle_case settle_table[] = {
    {failure_kind::malformed, act::reject, 400, true, nullptr, 400},
    {failure_kind::not_implemented, act::reject, 501, true, nullptr, 501},
    {failure_kind::method_not_allowed, act::reject, 405, true, nullptr, 405},
    {failure_kind::head_timeout, act::reject, 408, false, nullptr, 408},
    {failure_kind::body_timeout, act::reject, 408, true, "request timeout", 0},
    {failure_kind::gone, act::client_cancel, 200, false, nullptr, 0},
    {failure_kind::too_large, act::reject, 413, true, "request body too large", 413},
    {failure_kind::loop, act::error, 508, true, "loop detected", 508},
    {failure_kind::dial_failed, act::error, 502, true, "bad gateway", 502},
    {failure_kind::response_timeout, act::error, 504, true, "gateway timeout", 504},
    {failure_kind::broken, act::error, 502, true, "bad gateway", 0},
    {failure_kind::response_too_large, act::error, 502, true, "bad gateway", 502},
    {failure_kind::stale, act::error, 502, true, "bad gateway", 0},
};

std::string kind_name(failure_kind k) {
    switch (k) {
        case failure_kind::malformed: return "malformed";
        case failure_kind::not_implemented: return "not_implemented";
        case failure_kind::method_not_allowed: return "method_not_allowed";
        case failure_kind::head_timeout: return "head_timeout";
        case failure_kind::body_timeout: return "body_timeout";
        case failure_kind::gone: return "gone";
        case failure_kind::too_large: return "too_large";
        case failure_kind::loop: return "loop";
        case failure_kind::dial_failed: return "dial_failed";
        case failure_kind::response_timeout: return "response_timeout";
        case failure_kind::broken: return "broken";
        case failure_kind::response_too_large: return "response_too_large";
        case failure_kind::stale: return "stale";
    }
    return "unknown";
}

class settle_each_kind : public ::testing::TestWithParam<settle_case> {};

TEST_P(settle_each_kind, before_the_response_started) {
    const auto& c = GetParam();
    const settlement s = settle({source::client, c.kind, "detail", 0}, false);
    EXPECT_STREQ(s.action, c.action);
    EXPECT_EQ(s.status, c.status);
    EXPECT_EQ(s.reply, c.reply);
    if (c.reply_text) EXPECT_STREQ(s.reply_text, c.reply_text);
    else EXPECT_EQ(s.reply_text, nullptr);
}

TEST_P(settle_each_kind, after_the_response_started_nothing_is_replied) {
    const auto& c = GetParam();
    const settlement s = settle({source::upstream, c.kind, "detail", 0}, true);
    EXPECT_FALSE(s.reply) << "a second response head cannot follow the first";
    EXPECT_EQ(s.status, c.status_after);
    // A client that left is a cancel whenever it happens; the rest keep their action, except the
    // body timeout and a broken origin, which are errors of a transfer already under way.
    if (c.kind == failure_kind::gone) EXPECT_STREQ(s.action, act::client_cancel);
    else if (c.kind == failure_kind::body_timeout) EXPECT_STREQ(s.action, act::error);
    else EXPECT_STREQ(s.action, c.action);
}

INSTANTIATE_TEST_SUITE_P(kinds, settle_each_kind, ::testing::ValuesIn(settle_table),
                         [](const ::testing::TestParamInfo<settle_case>& info) { return kind_name(info.param.kind); });

TEST(settle, the_table_covers_every_kind) {
    EXPECT_EQ(std::size(settle_table), static_cast<std::size_t>(failure_kind::stale) + 1);
}

// exchange_state needs a connection with an audit sink and a policy.
class phases_test : public ::testing::Test {
protected:
    boost::asio::io_context io_;
    test::test_proxy proxy_{io_};
    runtime::connection_info conn_ = proxy_.connection();
};

TEST_F(phases_test, record_failure_writes_action_status_and_detail) {
    runtime::exchange_state st(conn_);
    const failure f = upstream_failure(failure_kind::dial_failed, "dial tcp 127.0.0.1:1: connect: connection refused");
    record_failure(st, f, settle(f, false));
    EXPECT_EQ(st.rec.action, act::error);
    EXPECT_EQ(st.rec.status_code, 502);
    EXPECT_EQ(st.rec.error, f.detail);
}

TEST_F(phases_test, record_failure_after_the_head_keeps_the_status_the_client_saw) {
    runtime::exchange_state st(conn_);
    st.rec.status_code = 200;
    st.response_started = true;
    const failure f = upstream_failure(failure_kind::broken, "reading response body: eof after 10 response bytes");
    record_failure(st, f, settle(f, true));
    EXPECT_EQ(st.rec.action, act::error);
    EXPECT_EQ(st.rec.status_code, 200);
    EXPECT_EQ(st.rec.error, f.detail);
}

TEST_F(phases_test, record_failure_of_a_silent_cancel_leaves_the_error_empty) {
    runtime::exchange_state st(conn_);
    const failure f = client_failure(failure_kind::gone, "");
    record_failure(st, f, settle(f, false));
    EXPECT_EQ(st.rec.action, act::client_cancel);
    EXPECT_EQ(st.rec.status_code, 200);
    EXPECT_TRUE(st.rec.error.empty());
}

pipeline::phase_result decided(pipeline::verdict::kind k, int status, std::string error = {}) {
    pipeline::phase_result r;
    r.outcome.what = k;
    r.outcome.status = status;
    r.outcome.error = std::move(error);
    r.decided_by = "allowlist";
    return r;
}

TEST(record_verdict, reject_stub_and_error) {
    using kind = pipeline::verdict::kind;
    audit::record rec;
    record_verdict(rec, decided(kind::reject, 403), true);
    EXPECT_EQ(rec.action, act::reject);
    EXPECT_EQ(rec.status_code, 403);
    EXPECT_EQ(rec.rejected_by, "allowlist");

    audit::record stub;
    record_verdict(stub, decided(kind::stub, 204), true);
    EXPECT_EQ(stub.action, act::stub);
    EXPECT_EQ(stub.status_code, 204);
    EXPECT_EQ(stub.stubbed_by, "allowlist");

    audit::record err;
    record_verdict(err, decided(kind::error, 0, "transform x request: boom"), true);
    EXPECT_EQ(err.action, act::error);
    EXPECT_EQ(err.status_code, 502);
    EXPECT_EQ(err.error, "transform x request: boom");

    audit::record untouched;
    record_verdict(untouched, decided(kind::next, 0), true);
    EXPECT_EQ(untouched.action, act::allow);
    EXPECT_EQ(untouched.status_code, 0);
}

TEST(record_verdict, the_response_phase_names_no_decider) {
    using kind = pipeline::verdict::kind;
    audit::record rec;
    record_verdict(rec, decided(kind::reject, 451), false);
    EXPECT_EQ(rec.action, act::reject);
    EXPECT_EQ(rec.status_code, 451);
    EXPECT_TRUE(rec.rejected_by.empty());
    audit::record stub;
    record_verdict(stub, decided(kind::stub, 200), false);
    EXPECT_TRUE(stub.stubbed_by.empty());
}

struct target_case {
    const char* host;
    const char* target;  // as on the request line
    bool tls;
    const char* sni;
    const char* error;  // nullptr: accepted
};

const target_case target_table[] = {
    {"a.test", "/x?q=1", false, "", nullptr},
    {"A.Test.:8080", "/x", false, "", nullptr},
    {"a.test", "http://a.test/x", false, "", nullptr},
    {"", "/x", false, "", "missing Host header"},
    {":80", "/x", false, "", "missing Host header"},
    {"a.test", "*", false, "", "malformed request target"},
    {"a.test", "/a/../b", false, "", "path contains dot segments"},
    {"a.test", "/a/%2e%2e/b", false, "", "path contains dot segments"},
    {"a.test", "/%zz", false, "", "malformed path"},
    {"a.test:99999", "/x", false, "", "invalid port in Host header"},
    {"a.test:0x50", "/x", false, "", "invalid port in Host header"},
    {"a.test", "/x", true, "a.test", nullptr},
    {"A.TEST:443", "/x", true, "a.test.", nullptr},
    {"b.test", "/x", true, "a.test", "SNI and Host header mismatch"},
};

class check_target_cases : public ::testing::TestWithParam<target_case> {
protected:
    boost::asio::io_context io_;
    test::test_proxy proxy_{io_};
};

TEST_P(check_target_cases, accepts_or_names_why_not) {
    const auto& c = GetParam();
    auto conn = proxy_.connection(c.tls, c.sni);
    runtime::exchange_state st(conn);
    st.set_host(c.host);
    auto f = check_target(st, conn, http::parse_request_target(c.target));
    if (!c.error) {
        ASSERT_FALSE(f) << f->detail;
        return;
    }
    ASSERT_TRUE(f);
    EXPECT_EQ(f->kind, failure_kind::malformed);
    EXPECT_EQ(f->from, source::client);
    EXPECT_EQ(f->detail, c.error);
}

INSTANTIATE_TEST_SUITE_P(targets, check_target_cases, ::testing::ValuesIn(target_table));

TEST_F(phases_test, check_target_sets_the_policy_host_path_and_query) {
    runtime::exchange_state st(conn_);
    st.set_host("Api.Example.Test.:8443");
    ASSERT_FALSE(check_target(st, conn_, http::parse_request_target("/v1/a%20b?x=1&y=2")));
    EXPECT_EQ(st.ex.policy_host, "api.example.test");
    EXPECT_EQ(st.ex.path, "/v1/a b");
    EXPECT_EQ(st.rec.path, "/v1/a b");
    EXPECT_EQ(st.ex.raw_path, "/v1/a%20b");
    EXPECT_EQ(st.ex.raw_query, "x=1&y=2");
}

TEST_F(phases_test, a_rejected_path_is_still_recorded_decoded) {
    runtime::exchange_state st(conn_);
    st.set_host("a.test");
    auto f = check_target(st, conn_, http::parse_request_target("/a/%2E%2E/etc"));
    ASSERT_TRUE(f);
    EXPECT_EQ(st.rec.path, "/a/../etc");
    EXPECT_TRUE(st.ex.policy_host.empty()) << "policy never sees a rejected request";
}

TEST_F(phases_test, upstream_for_takes_the_port_from_host_else_the_scheme) {
    struct row {
        const char* host;
        bool tls;
        const char* want_host;
        int want_port;
    };
    for (const row r : {row{"a.test", false, "a.test", 80}, row{"a.test", true, "a.test", 443},
                        row{"A.test:8080", false, "a.test", 8080}, row{"a.test:8443", true, "a.test", 8443},
                        row{"127.0.0.1:9", false, "127.0.0.1", 9}, row{"[::1]:81", false, "::1", 81}}) {
        SCOPED_TRACE(r.host);
        runtime::exchange_state st(conn_);
        st.set_host(r.host);
        ASSERT_FALSE(check_target(st, conn_, http::parse_request_target("/")));
        const upstream_target to = upstream_for(st, r.tls);
        EXPECT_EQ(to.host, r.want_host);
        EXPECT_EQ(to.port, r.want_port);
        EXPECT_EQ(to.tls, r.tls);
    }
}

TEST(dial_failure, a_loop_is_the_proxys_own_508_else_the_upstreams_502) {
    const failure loop = dial_failure(make_error(error_kind::loop_detected, "loop detected: 127.0.0.1:80 is this proxy's http listener"));
    EXPECT_EQ(loop.kind, failure_kind::loop);
    EXPECT_EQ(loop.from, source::proxy);
    EXPECT_EQ(settle(loop, false).status, 508);
    const failure refused = dial_failure(make_error("dial tcp 127.0.0.1:1: connect: connection refused"));
    EXPECT_EQ(refused.kind, failure_kind::dial_failed);
    EXPECT_EQ(refused.from, source::upstream);
    EXPECT_EQ(refused.detail, "dial tcp 127.0.0.1:1: connect: connection refused");
    EXPECT_EQ(settle(refused, false).status, 502);
}

TEST_F(phases_test, every_exchange_state_writes_exactly_one_record) {
    {
        runtime::exchange_state st(conn_);
        st.set_method("GET");
        st.emit();
        st.emit();  // later calls do nothing
    }  // and neither does the destructor
    { runtime::exchange_state st(conn_); }  // never emitted: the destructor writes it
    const auto recs = proxy_.records();
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].method, "GET");
    EXPECT_EQ(proxy_.audit_lines().size(), 2u);
}

}  // namespace
}  // namespace iron::exchange
