#pragma once
// Builds a pipeline from config entries through the explicit table of transform factories, which
// lives here with the transforms (pipeline/ knows only the transform interface). Unknown names are
// errors: `unknown transform "x": unknown transform: "x"` (Go's message). The order is checked
// against what each transform declares (pipeline/ordering.hpp).
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pipeline/pipeline.hpp"

namespace iron::transforms {

// `last_stage`: the proxy's own stage that runs after the transforms (the MCP policy), if any.
result<std::shared_ptr<const pipeline::pipeline>> build_pipeline(const std::vector<config::transform_entry>& entries,
                                                                 const std::string& file,
                                                                 std::unique_ptr<const pipeline::transform> last_stage = nullptr);

}  // namespace iron::transforms
