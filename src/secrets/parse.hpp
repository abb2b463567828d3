#pragma once
// Strict decoding of a `source:` block (the Go proxy's shapes) into a secret source.
//
//   {type: env,  var: X,                               json_key?, name?}
//   {type: file, path: P, ttl?: "30s", failure_ttl?,   json_key?, name?}
//   {type: control_plane, value: V,                    json_key?, name?}
//
//   {type: aws_sm | aws_ssm | 1password_connect | gcp_sm, …}  (aws_stores.hpp, onepassword_connect.hpp,
//                                                             gcp_sm.hpp; remote_source.hpp)
//
// `name` is an extension: the display name used in annotations and logs instead of the default
// (var name / file basename / "control_plane"); aws_ssm's `name` is its parameter instead.
// `1password` (1Password's SDK) is a config error that names 1password_connect.
// Building reads env/file once (startup or reload, off the request path) and never contacts a
// remote store; an unavailable value is not a config error — requests needing it are rejected
// until it appears (Go's lazy semantics).
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
