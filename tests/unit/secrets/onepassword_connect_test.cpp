// 1Password Connect references and field selection (the Go proxy's rules: field by ID or label,
// section by ID or label).
#include "secrets/onepassword_connect.hpp"

#include <gtest/gtest.h>

namespace iron::secrets {
namespace {

TEST(OpConnect, ParseReferences) {
    auto three = parse_op_ref("op://vault/item/field");
    ASSERT_TRUE(three);
    EXPECT_EQ(three->vault, "vault");
    EXPECT_EQ(three->item, "item");
    EXPECT_EQ(three->section, "");
    EXPECT_EQ(three->field, "field");
    auto four = parse_op_ref("op://v/i/s/f");
    ASSERT_TRUE(four);
    EXPECT_EQ(four->section, "s");
    EXPECT_EQ(parse_op_ref("vault/item/field").message(), "secret_ref \"vault/item/field\" must start with \"op://\"");
    EXPECT_EQ(parse_op_ref("op://a/b").message(),
              "secret_ref \"op://a/b\" must have 3 or 4 path segments (op://vault/item/[section/]field)");
    EXPECT_FALSE(parse_op_ref("op://a/b/c/d/e"));
    EXPECT_EQ(parse_op_ref("op://a//c").message(), "secret_ref \"op://a//c\" has an empty path segment");
}

constexpr const char* item = R"({
  "id": "i", "sections": [{"id": "s1", "label": "api"}],
  "fields": [
    {"id": "password", "label": "password", "value": "top"},
    {"id": "f2", "label": "token", "value": "in-section", "section": {"id": "s1"}},
    {"id": "f3", "label": "token", "value": "other-section", "section": {"id": "s2", "label": "web"}}
  ]})";

TEST(OpConnect, SelectFieldByIdOrLabelAndSection) {
    EXPECT_EQ(*select_connect_field(item, {"v", "i", "", "password"}), "top");
    EXPECT_EQ(*select_connect_field(item, {"v", "i", "", "f3"}), "other-section");
    EXPECT_EQ(*select_connect_field(item, {"v", "i", "api", "token"}), "in-section");  // section label via sections
    EXPECT_EQ(*select_connect_field(item, {"v", "i", "s1", "token"}), "in-section");   // section id
    EXPECT_EQ(*select_connect_field(item, {"v", "i", "web", "token"}), "other-section");
    EXPECT_EQ(select_connect_field(item, {"v", "i", "", "nope"}).message(), "field \"nope\" not found on item");
    EXPECT_EQ(select_connect_field(item, {"v", "i", "x", "token"}).message(),
              "field \"token\" in section \"x\" not found on item");
    EXPECT_FALSE(select_connect_field("[]", {"v", "i", "", "password"}));
}

}  // namespace
}  // namespace iron::secrets
