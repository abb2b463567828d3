#pragma once
// What the secrets transform's unit tests share: environment variables set for one test (the env
// secret source reads them) and unset after it, and building the transform from a YAML snippet
// ("config:\n  secrets: ...") with the error path the proxy's loader would give it.
#include <stdlib.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "transforms/secrets.hpp"

namespace iron::test {

class secrets_fixture : public ::testing::Test {
protected:
    // `config_path` is where the transform's config sits in a whole file ("transforms[1].config"):
    // build errors name it.
    explicit secrets_fixture(std::string config_path) : config_path_(std::move(config_path)) {}

    void TearDown() override {
        for (const auto& name : env_) unsetenv(name.c_str());
    }
    void set_env(const char* name, const char* value) {
        setenv(name, value, 1);
        env_.emplace_back(name);
    }

    result<std::unique_ptr<transforms::secrets_transform>> build(const std::string& yaml) const {
        YAML::Node root = YAML::Load(yaml);
        return transforms::secrets_transform::from_config(root["config"], config::yaml_ctx{"c.yaml", config_path_});
    }
    std::unique_ptr<transforms::secrets_transform> must_build(const std::string& yaml) const {
        auto r = build(yaml);
        EXPECT_TRUE(r) << r.message();
        return r ? std::move(r).value() : nullptr;
    }
    std::string build_error(const std::string& yaml) const {
        auto r = build(yaml);
        EXPECT_FALSE(r) << "built although an error was expected";
        return r ? std::string() : r.message();
    }

private:
    std::string config_path_;
    std::vector<std::string> env_;
};

}  // namespace iron::test
