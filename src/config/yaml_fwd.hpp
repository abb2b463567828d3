#pragma once
// Names only, for headers that hold or pass a YAML node by reference: they need neither yaml-cpp
// nor the decoding helpers. The .cpp that reads the node includes config/yaml_util.hpp.
namespace YAML {
class Node;
}

namespace iron::config {
struct yaml_ctx;
}
