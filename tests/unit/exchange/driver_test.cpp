// drive_exchange with fake adapters: plain structs providing what exchange/driver.hpp asks of a
// downstream and an upstream, each call logged, the outcome of each scripted. The phases run on
// an io_context with the real pipeline, policy snapshot and audit sink (support/test_proxy.hpp),
// so each test checks the order of the phases, what the client is told, what happens to the
// upstream connection and the one audit record.
#include "exchange/driver.hpp"

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "support/test_proxy.hpp"

namespace iron::exchange {
namespace {

namespace asio = boost::asio;
using runtime::exchange_state;
using events = std::vector<std::string>;

// What one upstream attempt does.
struct upstream_plan {
    std::optional<failure> send_fails;
    std::optional<failure> head_fails;
    int status = 200;
    std::vector<std::string> body{"hel", "lo"};
    std::optional<failure> body_fails;  // after the pieces above
};

// The whole exchange's script, and the log of what the driver asked for.
struct script {
    std::string host = "allowed.test";
    std::optional<failure> head_fails;
    std::optional<failure> guard_fails;
    std::optional<failure> connect_fails;
    bool client_leaves_while_waiting = false;  // while a transform awaits the network
    std::vector<upstream_plan> attempts{upstream_plan{}};
    events log;
    std::string body_sent;  // what reached the client
    std::string proxy_status;  // the Proxy-Status of the last response the proxy made
    void note(std::string e) { log.push_back(std::move(e)); }
};

bool has(const events& log, const std::string& e) {
    for (const auto& x : log)
        if (x == e) return true;
    return false;
}

class fake_upstream {
public:
    fake_upstream(script& sc, const upstream_plan& plan) : sc_(sc), plan_(plan) {}

    template <class Down>
    asio::awaitable<std::optional<failure>> send_request(Down&, exchange_state&) {
        sc_.note("send");
        co_return plan_.send_fails;
    }
    template <class Down>
    asio::awaitable<std::optional<failure>> read_response_head(exchange_state&, Down&) {
        sc_.note("response_head");
        co_return plan_.head_fails;
    }
    response_head head() const { return {plan_.status, plan_.body.empty() && !plan_.body_fails, false}; }
    core::header_list header_list() const {
        core::header_list h;
        h.add("Content-Type", "text/plain");
        return h;
    }
    void abandon() {
        sc_.note("abandon");
        abandoned_ = true;
    }
    template <class Down>
    asio::awaitable<body_read> read_body(exchange_state&, Down&) {
        if (next_ < plan_.body.size()) {
            const std::string& piece = plan_.body[next_++];
            co_return body_read{piece, next_ == plan_.body.size() && !plan_.body_fails, std::nullopt};
        }
        co_return body_read{{}, true, plan_.body_fails};
    }
    // As h1_upstream: back to the pool only after a clean, whole exchange.
    void end(bool clean) { sc_.note(clean && !abandoned_ ? "pooled" : "closed"); }
    bool pumping() const { return false; }
    asio::awaitable<void> pump_done() { co_return; }

private:
    script& sc_;
    const upstream_plan& plan_;
    std::size_t next_ = 0;
    bool abandoned_ = false;
};

class fake_downstream {
public:
    fake_downstream(script& sc, runtime::connection_info& conn) : sc_(sc), conn_(conn) {}

    std::optional<failure> accept_head() {
        sc_.note("accept");
        return sc_.head_fails;
    }
    void identify(exchange_state& st) {
        sc_.note("identify");
        st.set_method("GET");
        st.set_host(sc_.host);
    }
    std::optional<failure> guard(exchange_state& st) {
        sc_.note("guard");
        if (sc_.guard_fails) return sc_.guard_fails;
        return check_target(st, conn_, http::parse_request_target("/p"));
    }
    asio::awaitable<std::optional<failure>> buffer_body(exchange_state& st) {
        sc_.note("buffer_body");
        st.ex.request_body.present = true;
        st.ex.request_body.complete = false;  // more than the cap arrived
        co_return std::nullopt;
    }
    using route = std::variant<failure, int>;
    std::optional<route> pooled(exchange_state&) { return std::nullopt; }
    asio::awaitable<route> connect(exchange_state& st, int attempt) {
        (void)st;
        sc_.note("connect" + std::to_string(attempt));
        if (sc_.connect_fails) co_return *sc_.connect_fails;
        co_return attempt;
    }
    asio::awaitable<bool> attempt(exchange_state& st, route r, bool last_attempt) {
        return attempt_on(*this, fake_upstream(sc_, sc_.attempts.at(static_cast<std::size_t>(std::get<int>(r)))), st,
                          last_attempt);
    }
    struct nothing_tied {};
    nothing_tied tie_upstream(fake_upstream&) { return {}; }
    struct watching {};
    watching watch_client(exchange_state& st) {
        sc_.note("watch");
        st.ex.watch = std::make_shared<pipeline::client_watch>();
        if (sc_.client_leaves_while_waiting) st.ex.watch->client_leaves();
        return {};
    }

    asio::awaitable<void> reply_error(proxy_reply reply) {
        std::string text = reply.body;
        if (!text.empty() && text.back() == '\n') text.pop_back();
        sc_.note("reply_error " + std::to_string(reply.status) + " " + text);
        sc_.proxy_status = std::string(reply.headers.get("Proxy-Status").value_or(""));
        co_return;
    }
    asio::awaitable<void> reply_verdict(proxy_reply reply) {
        sc_.note("reply_verdict " + std::to_string(reply.status));
        sc_.proxy_status = std::string(reply.headers.get("Proxy-Status").value_or(""));
        co_return;
    }
    void abort(const failure&) { sc_.note("abort"); }
    void account(exchange_state&) { sc_.note("account"); }

    template <class Up>
    pipeline::response_filter_chain* prepare_response(exchange_state&, const response_head&, Up&) {
        return nullptr;
    }
    template <class Up>
    std::optional<failure> start_response(exchange_state& st, const response_head& head, Up&) {
        sc_.note("send_head " + std::to_string(head.status));
        st.rec.status_code = head.status;
        st.response_started = true;
        return std::nullopt;
    }
    bool head_waits() const { return false; }
    asio::awaitable<std::optional<failure>> send_response_head() { co_return std::nullopt; }
    asio::awaitable<std::optional<failure>> send_body(exchange_state& st, std::string_view piece, bool) {
        sc_.body_sent.append(piece);
        st.response_body_bytes += piece.size();
        co_return std::nullopt;
    }
    bool response_unfinished() const { return false; }
    template <class Up>
    void finish_response(exchange_state&, Up&) {
        sc_.note("finish");
    }
    template <class Up>
    asio::awaitable<std::optional<failure>> switch_protocols(exchange_state&, Up&) {
        sc_.note("switch");
        co_return std::nullopt;
    }

private:
    script& sc_;
    runtime::connection_info& conn_;
};

// Request phase: denies denied.test, asks for the body of body.test. Response phase: a 500 from
// the origin is replaced by a 451 (what a response-phase verdict looks like to the driver).
class scripted_transform final : public pipeline::transform {
public:
    std::string_view name() const override { return "scripted"; }
    pipeline::verdict on_request(pipeline::exchange& ex) const override {
        if (ex.policy_host == "denied.test") return pipeline::verdict::reject(403, "denied host");
        return pipeline::verdict::next();
    }
    pipeline::verdict on_response(pipeline::exchange& ex) const override {
        if (ex.status == 500) return pipeline::verdict::reject(451, "origin error hidden");
        return pipeline::verdict::next();
    }
    bool wants_request_body(const pipeline::exchange& ex) const override { return ex.policy_host == "body.test"; }
    bool awaits_request(const pipeline::exchange& ex) const override { return ex.policy_host == "await.test"; }
};

class driver_test : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(proxy_.ok());
        std::vector<std::unique_ptr<const pipeline::transform>> list;
        list.push_back(std::make_unique<scripted_transform>());
        auto policy = std::make_shared<runtime::request_policy>();
        policy->pipeline = std::make_shared<pipeline::pipeline>(std::move(list));
        policy->max_request_body_bytes = 16;
        proxy_.shared->policies->set(std::move(policy));
    }

    // Runs one exchange to its end; returns its audit record (exactly one must be written).
    audit::record drive(script& sc) {
        bool done = false;
        asio::co_spawn(io_, [&]() -> asio::awaitable<void> {
            runtime::exchange_state st(conn_);
            fake_downstream down(sc, conn_);
            co_await drive_exchange(down, st);
            done = true;
        }, asio::detached);
        io_.run();  // the fakes never wait on anything: this returns
        io_.restart();
        EXPECT_TRUE(done);
        auto recs = proxy_.records();
        EXPECT_EQ(recs.size(), 1u) << "every exchange writes exactly one audit record";
        EXPECT_EQ(proxy_.audit_lines().size(), recs.size());
        return recs.empty() ? audit::record{} : recs.back();
    }

    asio::io_context io_;
    test::test_proxy proxy_{io_};
    runtime::connection_info conn_ = proxy_.connection();
};

TEST_F(driver_test, a_clean_exchange_runs_every_phase_in_order_and_pools_the_upstream) {
    script sc;
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "connect0", "send", "response_head", "send_head 200",
                              "finish", "pooled", "account"}));
    EXPECT_EQ(sc.body_sent, "hello");
    EXPECT_EQ(rec.action, audit::action::allow);
    EXPECT_EQ(rec.status_code, 200);
    EXPECT_EQ(rec.host, "allowed.test");
    EXPECT_EQ(rec.path, "/p");
    EXPECT_TRUE(rec.error.empty());
}

TEST_F(driver_test, a_guard_failure_is_replied_once_and_nothing_is_dialed) {
    script sc;
    sc.guard_fails = client_failure(failure_kind::malformed, "duplicate Host header");
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "reply_error 400 duplicate Host header", "account"}));
    EXPECT_EQ(rec.action, audit::action::reject);
    EXPECT_EQ(rec.status_code, 400);
    EXPECT_EQ(rec.error, "duplicate Host header");
    EXPECT_EQ(sc.proxy_status, "iron-proxy; error=http_request_error; details=\"duplicate Host header\"");
}

TEST_F(driver_test, a_head_that_timed_out_gets_no_reply_but_a_408_record) {
    script sc;
    sc.head_fails = client_failure(failure_kind::head_timeout, "timeout reading request header");
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "abort", "account"}));
    EXPECT_EQ(rec.action, audit::action::reject);
    EXPECT_EQ(rec.status_code, 408);
}

TEST_F(driver_test, a_request_phase_reject_is_answered_before_any_dial) {
    script sc;
    sc.host = "denied.test";
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "reply_verdict 403", "account"}));
    EXPECT_FALSE(has(sc.log, "connect0")) << "default deny: policy runs before any upstream dial";
    EXPECT_EQ(rec.action, audit::action::reject);
    EXPECT_EQ(rec.status_code, 403);
    EXPECT_EQ(rec.rejected_by, "scripted");
    EXPECT_EQ(sc.proxy_status, "iron-proxy; error=http_request_denied; details=\"denied host: denied.test\"");
}

TEST_F(driver_test, a_buffered_body_over_the_cap_is_refused_before_any_dial) {
    script sc;
    sc.host = "body.test";
    const auto rec = drive(sc);
    ASSERT_GE(sc.log.size(), 5u);
    EXPECT_EQ(sc.log[3], "buffer_body");
    EXPECT_EQ(sc.log[4], "reply_error 413 request body too large");
    EXPECT_FALSE(has(sc.log, "connect0"));
    EXPECT_EQ(rec.status_code, 413);
    EXPECT_EQ(rec.error, "request body larger than proxy.max_request_body_bytes (16)");
}

TEST_F(driver_test, a_failed_dial_is_a_502_and_nothing_is_sent) {
    script sc;
    sc.connect_fails = upstream_failure(failure_kind::dial_failed, "dial tcp 127.0.0.1:1: connect: connection refused");
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "connect0", "reply_error 502 bad gateway", "account"}));
    EXPECT_EQ(rec.action, audit::action::error);
    EXPECT_EQ(rec.status_code, 502);
    EXPECT_EQ(rec.error, "dial tcp 127.0.0.1:1: connect: connection refused");
    EXPECT_EQ(sc.proxy_status,
              "iron-proxy; error=destination_unavailable; details=\"dial tcp 127.0.0.1:1: connect: connection refused\"");
}

TEST_F(driver_test, a_stale_pooled_connection_is_retried_once_on_a_fresh_one) {
    script sc;
    sc.attempts = {upstream_plan{}, upstream_plan{}};
    sc.attempts[0].send_fails = upstream_failure(failure_kind::stale, "writing request: broken pipe");
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "connect0", "send", "closed", "connect1", "send",
                              "response_head", "send_head 200", "finish", "pooled", "account"}));
    EXPECT_EQ(rec.action, audit::action::allow);
    EXPECT_EQ(rec.status_code, 200);
    EXPECT_TRUE(rec.error.empty()) << "the retried failure leaves no trace in the record";
}

TEST_F(driver_test, stale_twice_is_a_502) {
    script sc;
    sc.attempts = {upstream_plan{}, upstream_plan{}};
    sc.attempts[0].send_fails = upstream_failure(failure_kind::stale, "writing request: broken pipe");
    sc.attempts[1].head_fails = upstream_failure(failure_kind::stale, "reading response: end of stream");
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "connect0", "send", "closed", "connect1", "send",
                              "response_head", "reply_error 502 bad gateway", "closed", "account"}));
    EXPECT_EQ(rec.action, audit::action::error);
    EXPECT_EQ(rec.status_code, 502);
    EXPECT_EQ(rec.error, "reading response: end of stream");
}

TEST_F(driver_test, a_response_timeout_is_a_504) {
    script sc;
    sc.attempts[0].head_fails = upstream_failure(failure_kind::response_timeout, "timeout awaiting response headers");
    const auto rec = drive(sc);
    EXPECT_TRUE(has(sc.log, "reply_error 504 gateway timeout"));
    EXPECT_EQ(sc.log.at(sc.log.size() - 2), "closed");
    EXPECT_EQ(rec.status_code, 504);
    EXPECT_EQ(rec.error, "timeout awaiting response headers");
    EXPECT_EQ(sc.proxy_status, "iron-proxy; error=http_response_timeout; details=\"timeout awaiting response headers\"");
}

TEST_F(driver_test, a_response_phase_verdict_replaces_the_response_and_the_upstream_is_not_pooled) {
    script sc;
    sc.attempts[0].status = 500;
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "connect0", "send", "response_head", "abandon",
                              "reply_verdict 451", "closed", "account"}));
    EXPECT_TRUE(sc.body_sent.empty()) << "the origin's body is never relayed";
    EXPECT_EQ(rec.action, audit::action::reject);
    EXPECT_EQ(rec.status_code, 451);
    EXPECT_TRUE(rec.rejected_by.empty());
    ASSERT_EQ(rec.response_transforms.size(), 1u);
    EXPECT_EQ(rec.response_transforms[0].name, "scripted");
}

TEST_F(driver_test, an_upstream_broken_after_the_response_started_is_cut_and_keeps_its_status) {
    script sc;
    sc.attempts[0].body = {"partial"};
    sc.attempts[0].body_fails = upstream_failure(failure_kind::broken, "reading response body: eof after 7 response bytes");
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "connect0", "send", "response_head", "send_head 200",
                              "abort", "closed", "account"}));
    EXPECT_EQ(sc.body_sent, "partial");
    EXPECT_EQ(rec.action, audit::action::error);
    EXPECT_EQ(rec.status_code, 200) << "the status the client saw stays";
    EXPECT_EQ(rec.error, "reading response body: eof after 7 response bytes");
}

TEST_F(driver_test, a_client_leaving_while_a_transform_waits_is_a_cancel_and_nothing_is_dialed) {
    script sc;
    sc.host = "await.test";
    sc.client_leaves_while_waiting = true;
    const auto rec = drive(sc);
    EXPECT_EQ(sc.log, (events{"accept", "identify", "guard", "watch", "abort", "account"}));
    EXPECT_EQ(rec.action, audit::action::client_cancel);
    EXPECT_EQ(rec.error, "client closed the connection while a transform waited");
}

TEST_F(driver_test, a_waiting_transform_whose_client_stays_goes_on) {
    script sc;
    sc.host = "await.test";
    const auto rec = drive(sc);
    EXPECT_TRUE(has(sc.log, "watch"));
    EXPECT_TRUE(has(sc.log, "connect0"));
    EXPECT_EQ(rec.action, audit::action::allow);
}

TEST_F(driver_test, a_client_leaving_mid_body_is_a_cancel) {
    script sc;
    sc.attempts[0].body = {"x"};
    sc.attempts[0].body_fails = client_failure(failure_kind::gone, "writing response body: broken pipe");
    const auto rec = drive(sc);
    EXPECT_TRUE(has(sc.log, "abort"));
    EXPECT_FALSE(has(sc.log, "pooled"));
    EXPECT_EQ(rec.action, audit::action::client_cancel);
    EXPECT_EQ(rec.status_code, 200);
}

}  // namespace
}  // namespace iron::exchange
