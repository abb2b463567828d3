// Response filters: attached in the response phase, chained in order, each annotating its own
// transform's trace; dropped when the response phase replaces the response.
#include "pipeline/response_filter.hpp"

#include <cctype>

#include <gtest/gtest.h>

#include "pipeline/pipeline.hpp"

namespace iron::pipeline {
namespace {

// Upper-cases the body; holds back a trailing '!' until the next piece or the end (to show
// held-back bytes flow through a chain); counts pieces.
class shout final : public response_filter {
public:
    explicit shout(bool body = true) : body_(body) {}
    bool rewrites_body() const override { return body_; }
    void feed(std::string_view in, std::string& out) override {
        ++pieces_;
        std::string all = held_ + std::string(in);
        held_.clear();
        if (!all.empty() && all.back() == '!') {
            held_ = "!";
            all.pop_back();
        }
        for (char c : all) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    void finish(std::string& out) override {
        out += held_;
        held_.clear();
    }
    void rewrite_text(std::string& text) override { text = "[" + text + "]"; }
    void annotate(audit::trace& t) const override { t.annotations["pieces"] = pieces_; }

private:
    bool body_;
    std::string held_;
    int pieces_ = 0;
};

// Doubles every 'A'.
class double_a final : public response_filter {
public:
    bool rewrites_body() const override { return true; }
    void feed(std::string_view in, std::string& out) override {
        for (char c : in) {
            out.push_back(c);
            if (c == 'A') out.push_back('A');
        }
    }
    void finish(std::string&) override {}
    void rewrite_text(std::string&) override {}
    void annotate(audit::trace& t) const override { t.annotations["doubled"] = true; }
};

TEST(ResponseFilter, EmptyChainIsInert) {
    response_filter_chain c;
    EXPECT_TRUE(c.empty());
    EXPECT_FALSE(c.rewrites_body());
    std::string out;
    c.feed("abc", out);
    c.finish(out);
    EXPECT_EQ(out, "abc");
}

TEST(ResponseFilter, ChainAppliesInOrderAndReleasesHeldBytes) {
    response_filter_chain c;
    c.attach(std::make_unique<shout>(), 0);
    c.attach(std::make_unique<double_a>(), 1);
    EXPECT_TRUE(c.rewrites_body());
    std::string out;
    c.feed("a!", out);
    EXPECT_EQ(out, "AA");  // '!' held back by the first filter
    c.feed("ba!", out);
    EXPECT_EQ(out, "AA!BAA");
    c.finish(out);
    EXPECT_EQ(out, "AA!BAA!");
    std::string text = "reason";
    c.rewrite_text(text);
    EXPECT_EQ(text, "[reason]");
    std::vector<audit::trace> traces(2);
    c.annotate(traces);
    EXPECT_EQ(traces[0].annotations.at("pieces").as_int64(), 3);  // two feeds + finish's empty run
    EXPECT_TRUE(traces[1].annotations.at("doubled").as_bool());
}

TEST(ResponseFilter, HeadOnlyFilterLeavesTheBodyAlone) {
    response_filter_chain c;
    c.attach(std::make_unique<shout>(/*body=*/false), 5);
    EXPECT_FALSE(c.empty());
    EXPECT_FALSE(c.rewrites_body());
    std::string out;
    c.feed("abc!", out);
    c.finish(out);
    EXPECT_EQ(out, "abc!");
    std::vector<audit::trace> traces(1);
    c.annotate(traces);  // index 5 is out of range: skipped, no crash
    EXPECT_TRUE(traces[0].annotations.empty());
}

// Attaches a filter in the response phase, then answers `resp`.
class attacher final : public transform {
public:
    explicit attacher(verdict resp) : resp_(std::move(resp)) {}
    std::string_view name() const override { return "attacher"; }
    verdict on_request(exchange&) const override { return verdict::next(); }
    verdict on_response(exchange& ex) const override {
        ex.attach_response_filter(std::make_unique<shout>());
        return resp_;
    }

private:
    verdict resp_;
};

TEST(ResponseFilter, AttachedWithTheRunningTransformsTraceIndex) {
    std::vector<std::unique_ptr<const transform>> v;
    v.push_back(std::make_unique<attacher>(verdict::next()));
    v.push_back(std::make_unique<attacher>(verdict::next()));
    pipeline p(std::move(v));
    exchange ex;
    ex.attach_response_filter(std::make_unique<shout>());  // outside a phase: ignored
    EXPECT_TRUE(ex.response_filters.empty());
    std::vector<audit::trace> traces;
    p.run_response(ex, traces);
    ASSERT_EQ(traces.size(), 2u);
    std::string out;
    ex.response_filters.feed("x", out);
    ex.response_filters.annotate(traces);
    EXPECT_EQ(traces[0].annotations.at("pieces").as_int64(), 1);
    EXPECT_EQ(traces[1].annotations.at("pieces").as_int64(), 1);
}

TEST(ResponseFilter, ResponseReplacedByAVerdictDropsFilters) {
    std::vector<std::unique_ptr<const transform>> v;
    v.push_back(std::make_unique<attacher>(verdict::next()));
    v.push_back(std::make_unique<attacher>(verdict::reject(403)));
    pipeline p(std::move(v));
    exchange ex;
    std::vector<audit::trace> traces;
    EXPECT_EQ(p.run_response(ex, traces).outcome.what, verdict::kind::reject);
    EXPECT_TRUE(ex.response_filters.empty());
}

}  // namespace
}  // namespace iron::pipeline
