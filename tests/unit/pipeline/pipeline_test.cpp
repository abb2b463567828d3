#include "pipeline/pipeline.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include <boost/json/string.hpp>
#include <thread>

namespace iron::pipeline {
namespace {

// A scripted transform: fixed verdicts per phase, optional annotation, records call order.
class fake final : public transform {
public:
    fake(std::string name, verdict req, verdict resp = verdict::next(), bool connect = false,
         std::vector<std::string>* log = nullptr)
        : name_(std::move(name)), req_(std::move(req)), resp_(std::move(resp)), connect_(connect), log_(log) {}
    std::string_view name() const override { return name_; }
    verdict on_request(exchange& ex) const override {
        if (log_) log_->push_back("req:" + name_);
        ex.note("seen_by", boost::json::string(name_));
        if (throw_) throw std::runtime_error("kaboom");
        if (sleep_) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return req_;
    }
    verdict on_response(exchange& ex) const override {
        if (log_) log_->push_back("resp:" + name_);
        return resp_;
    }
    bool applies_to_connect() const override { return connect_; }
    bool throw_ = false;
    bool sleep_ = false;

private:
    std::string name_;
    verdict req_, resp_;
    bool connect_;
    std::vector<std::string>* log_;
};

struct builder {
    std::vector<std::unique_ptr<const transform>> ts;
    builder& add(std::unique_ptr<fake> f) {
        ts.push_back(std::move(f));
        return *this;
    }
    pipeline build() { return pipeline(std::move(ts)); }
};

TEST(Pipeline, EmptyPipelineContinues) {
    pipeline p({});
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::next);
    EXPECT_TRUE(r.decided_by.empty());
    EXPECT_TRUE(traces.empty());
    EXPECT_TRUE(p.empty());
    EXPECT_EQ(p.names(), "");
}

TEST(Pipeline, AllContinueTracesEachWithAnnotations) {
    auto p = builder()
                 .add(std::make_unique<fake>("a", verdict::next()))
                 .add(std::make_unique<fake>("b", verdict::next()))
                 .build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::next);
    ASSERT_EQ(traces.size(), 2u);
    EXPECT_EQ(traces[0].name, "a");
    EXPECT_EQ(traces[1].name, "b");
    EXPECT_EQ(traces[0].action, audit::trace_action::allow);
    // Each annotation lands on the trace of the transform that made it.
    EXPECT_EQ(traces[0].annotations.at("seen_by").as_string(), "a");
    EXPECT_EQ(traces[1].annotations.at("seen_by").as_string(), "b");
    EXPECT_EQ(ex.current_trace, nullptr);
    EXPECT_EQ(p.names(), "a \xE2\x86\x92 b");
}

TEST(Pipeline, RejectShortCircuits) {
    std::vector<std::string> log;
    verdict custom = verdict::reject(407);
    custom.headers.add("Proxy-Authenticate", "Basic");
    auto p = builder()
                 .add(std::make_unique<fake>("a", verdict::next(), verdict::next(), false, &log))
                 .add(std::make_unique<fake>("b", custom, verdict::next(), false, &log))
                 .add(std::make_unique<fake>("c", verdict::next(), verdict::next(), false, &log))
                 .build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::reject);
    EXPECT_EQ(r.outcome.status, 407);
    EXPECT_EQ(r.outcome.headers.get("proxy-authenticate").value_or(""), "Basic");
    EXPECT_EQ(r.decided_by, "b");
    ASSERT_EQ(traces.size(), 2u);  // "c" never ran and left no trace
    EXPECT_EQ(traces[1].action, audit::trace_action::reject);
    EXPECT_EQ(log, (std::vector<std::string>{"req:a", "req:b"}));
}

TEST(Pipeline, VerdictReasonBecomesTheTraceAnnotation) {
    auto p = builder().add(std::make_unique<fake>("gate", verdict::reject(403, "host not in allowlist"))).build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.reason, "host not in allowlist");
    ASSERT_EQ(traces.size(), 1u);
    EXPECT_EQ(traces[0].annotations.at("reason").as_string(), "host not in allowlist");
    EXPECT_EQ(traces[0].annotations.at("seen_by").as_string(), "gate");  // the transform's own notes stay
}

TEST(Pipeline, StubShortCircuits) {
    auto p = builder()
                 .add(std::make_unique<fake>("s", verdict::stub(200)))
                 .add(std::make_unique<fake>("t", verdict::next()))
                 .build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::stub);
    EXPECT_EQ(r.decided_by, "s");
    ASSERT_EQ(traces.size(), 1u);
    EXPECT_EQ(traces[0].action, audit::trace_action::stub);
}

TEST(Pipeline, ErrorWrapsOutcomeKeepsTraceMessage) {
    auto p = builder()
                 .add(std::make_unique<fake>("secrets", verdict::fail("backend down")))
                 .add(std::make_unique<fake>("after", verdict::next()))
                 .build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::error);
    EXPECT_EQ(r.outcome.error, "transform secrets request: backend down");
    EXPECT_EQ(r.decided_by, "secrets");
    ASSERT_EQ(traces.size(), 1u);
    EXPECT_EQ(traces[0].action, audit::trace_action::error);
    EXPECT_EQ(traces[0].error, "backend down");
}

TEST(Pipeline, ExceptionFailsClosed) {
    auto f = std::make_unique<fake>("buggy", verdict::next());
    f->throw_ = true;
    auto p = builder().add(std::move(f)).add(std::make_unique<fake>("after", verdict::next())).build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_request(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::error);
    EXPECT_EQ(r.outcome.error, "transform buggy request: kaboom");
    ASSERT_EQ(traces.size(), 1u);
    EXPECT_EQ(traces[0].error, "kaboom");
    EXPECT_EQ(traces[0].annotations.at("seen_by").as_string(), "buggy");  // noted before the throw
    EXPECT_EQ(ex.current_trace, nullptr);
}

TEST(Pipeline, ResponsePhaseForwardOrderAndReject) {
    std::vector<std::string> log;
    auto p = builder()
                 .add(std::make_unique<fake>("one", verdict::next(), verdict::next(), false, &log))
                 .add(std::make_unique<fake>("two", verdict::next(), verdict::reject(), false, &log))
                 .add(std::make_unique<fake>("three", verdict::next(), verdict::next(), false, &log))
                 .build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_response(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::reject);
    EXPECT_EQ(r.outcome.status, 403);
    EXPECT_EQ(r.decided_by, "two");
    EXPECT_EQ(log, (std::vector<std::string>{"resp:one", "resp:two"}));
    ASSERT_EQ(traces.size(), 2u);
    EXPECT_EQ(traces[0].name, "one");
    EXPECT_EQ(traces[1].name, "two");
}

TEST(Pipeline, ResponseErrorSaysResponse) {
    auto p = builder().add(std::make_unique<fake>("x", verdict::next(), verdict::fail("bad"))).build();
    exchange ex;
    std::vector<audit::trace> traces;
    auto r = p.run_response(ex, traces);
    EXPECT_EQ(r.outcome.error, "transform x response: bad");
}

TEST(Pipeline, ConnectRunsOnlyHostLevelTransforms) {
    std::vector<std::string> log;
    auto p = builder()
                 .add(std::make_unique<fake>("allowlist", verdict::next(), verdict::next(), true, &log))
                 .add(std::make_unique<fake>("secrets", verdict::reject(), verdict::next(), false, &log))
                 .build();
    exchange ex;
    ex.is_connect = true;
    std::vector<audit::trace> traces;
    auto r = p.run_connect(ex, traces);
    EXPECT_EQ(r.outcome.what, verdict::kind::next);
    EXPECT_EQ(log, (std::vector<std::string>{"req:allowlist"}));
    ASSERT_EQ(traces.size(), 1u);
    EXPECT_EQ(traces[0].name, "allowlist");
}

TEST(Pipeline, TimingCaptured) {
    auto slow = std::make_unique<fake>("slow", verdict::next());
    slow->sleep_ = true;
    auto p = builder().add(std::make_unique<fake>("fast", verdict::next())).add(std::move(slow)).build();
    exchange ex;
    std::vector<audit::trace> traces;
    (void)p.run_request(ex, traces);
    ASSERT_EQ(traces.size(), 2u);
    EXPECT_GE(traces[0].duration_ms, 0.0);
    EXPECT_GE(traces[1].duration_ms, 2.0);
}

TEST(Exchange, NoteWithoutTraceIsNoop) {
    exchange ex;
    ex.note("k", 1);  // must not crash
    audit::trace t;
    ex.current_trace = &t;
    ex.note("k", 1);
    ex.note("k", 2);  // overwrite
    EXPECT_EQ(t.annotations.at("k").as_int64(), 2);
}

}  // namespace
}  // namespace iron::pipeline
