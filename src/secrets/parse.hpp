#pragma once
// Strict decoding of a `source:` block (the Go proxy's shapes) into a secret source.
//
//   {type: env,  var: X,                               json_key?, name?}
//   {type: file, path: P, ttl?: "30s", failure_ttl?,   json_key?, name?}
//   {type: control_plane, value: V,                    json_key?, name?}
//
// `name` is an extension: the display name used in annotations and logs instead of the default
// (var name / file basename / "control_plane"). Types the Go proxy has but this build does not
// (aws_sm, aws_ssm, 1password, 1password_connect) are config errors, never a silent skip.
// Building reads env/file once (startup or reload, off the request path); an unavailable value is
// not a config error — requests needing it are rejected until it appears (Go's lazy semantics).
#include <memory>

#include "config/yaml_fwd.hpp"
#include "core/result.hpp"
#include "secrets/source.hpp"

namespace iron::secrets {

// `ctx` names the source node itself (e.g. "transforms[1].config.secrets[0].source").
result<std::shared_ptr<source>> parse_source(const YAML::Node& node, const config::yaml_ctx& ctx);

// The seed-era shape (`source: env` at the transform level, `var:` per entry).
std::shared_ptr<source> make_env_source(std::string var);

}  // namespace iron::secrets
