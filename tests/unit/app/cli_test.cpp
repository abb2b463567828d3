#include "app/cli.hpp"

#include <gtest/gtest.h>

using namespace iron::app;

TEST(Cli, GoFlagForms) {
    for (auto args : std::vector<std::vector<std::string>>{
             {"-config", "a.yaml"}, {"--config", "a.yaml"}, {"-config=a.yaml"}, {"--config=a.yaml"}}) {
        auto f = parse_main_flags(args);
        ASSERT_TRUE(f) << f.message();
        EXPECT_EQ(f->config_path, "a.yaml");
        EXPECT_FALSE(f->check);
    }
}

TEST(Cli, CheckAndHelp) {
    auto f = parse_main_flags({"-check", "-config", "x.yaml"});
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->check);
    EXPECT_EQ(f->config_path, "x.yaml");
    auto h = parse_main_flags({"-h"});
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->help);
}

TEST(Cli, Errors) {
    auto unknown = parse_main_flags({"-bogus"});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.message(), "flag provided but not defined: -bogus");
    auto missing = parse_main_flags({"-config"});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.message(), "flag needs an argument: -config");
}

TEST(Cli, PositionalArgumentsIgnored) {
    auto f = parse_main_flags({"extra", "-config", "c.yaml", "more"});
    ASSERT_TRUE(f);
    EXPECT_EQ(f->config_path, "c.yaml");
}
