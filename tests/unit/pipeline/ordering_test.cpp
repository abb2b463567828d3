#include "pipeline/ordering.hpp"

#include <gtest/gtest.h>

namespace iron::pipeline {
namespace {

// A transform that only declares ordering needs: the check knows no transform by type.
class declared final : public transform {
public:
    declared(std::string name, ordering need) : name_(std::move(name)), need_(need) {}
    std::string_view name() const override { return name_; }
    verdict on_request(exchange&) const override { return verdict::next(); }
    ordering ordering_needs() const override { return need_; }

private:
    std::string name_;
    ordering need_;
};

std::unique_ptr<const transform> make(std::string name, bool swaps, bool in_body, bool sees_body, bool before) {
    ordering need;
    need.swaps_secrets = swaps;
    need.swaps_secrets_in_body = in_body;
    need.must_see_body_before_secrets = sees_body;
    need.must_run_before_secrets = before;
    return std::make_unique<declared>(std::move(name), need);
}

std::vector<std::unique_ptr<const transform>> chain(std::unique_ptr<const transform> a,
                                                    std::unique_ptr<const transform> b) {
    std::vector<std::unique_ptr<const transform>> out;
    out.push_back(std::move(a));
    out.push_back(std::move(b));
    return out;
}

TEST(Ordering, BodyRecorderAfterBodySwapIsRefusedWithItsPosition) {
    auto built = chain(make("swapper", true, true, false, false), make("recorder", false, false, true, false));
    auto r = check_ordering(built, {"f.yaml:2:3", "f.yaml:5:3"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message(), "f.yaml:5:3: recorder must be placed before secrets with match_body: after it, the "
                           "captured body would contain the real secret");
}

TEST(Ordering, BodyRecorderBeforeSwapOrAfterHeaderOnlySwapIsFine) {
    EXPECT_TRUE(check_ordering(chain(make("recorder", false, false, true, false), make("swapper", true, true, false, false)),
                               {"a", "b"}));
    EXPECT_TRUE(check_ordering(chain(make("swapper", true, false, false, false), make("recorder", false, false, true, false)),
                               {"a", "b"}));
}

TEST(Ordering, HeaderRecorderAfterSwapIsOnlyAWarning) {
    EXPECT_TRUE(check_ordering(chain(make("swapper", true, false, false, false), make("headers", false, false, false, true)),
                               {"a", "b"}));
}

TEST(Ordering, NoWhereGivesTheBareMessage) {
    auto r = check_ordering(chain(make("swapper", false, true, false, false), make("recorder", false, false, true, false)), {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.message().rfind("recorder must be placed before secrets", 0), 0u) << r.message();
}

}  // namespace
}  // namespace iron::pipeline
