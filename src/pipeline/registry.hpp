#pragma once
// Builds a pipeline from config entries through an explicit table of transform factories.
// Unknown names are errors: `unknown transform "x": unknown transform: "x"` (Go's message).
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pipeline/pipeline.hpp"

namespace iron::pipeline {

result<std::shared_ptr<const pipeline>> build_pipeline(const std::vector<config::transform_entry>& entries,
                                                       const std::string& file);

}  // namespace iron::pipeline
