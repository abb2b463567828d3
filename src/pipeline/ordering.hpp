#pragma once
// The ordering check of a built pipeline: every transform's declared needs (transform::
// ordering_needs) against the transforms before it, so that nothing records a real secret.
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "pipeline/transform.hpp"

namespace iron::pipeline {

// `where[i]` is the config position of `built[i]` ("file:line:col", or empty), for messages.
// A transform that must see the body before secrets are swapped, placed after one that swaps them
// in the body, is an error (it would record the real secret). One that must run before secrets,
// placed after any swap, is a warning (fine for headers the swap never touches).
result<void> check_ordering(const std::vector<std::unique_ptr<const transform>>& built,
                            const std::vector<std::string>& where);

}  // namespace iron::pipeline
