#pragma once
// Reading a store's JSON reply without letting a value escape: the one string wanted is copied
// out and every parsed copy wiped; error texts quote the store's own error fields, cut short.
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace iron::secrets {

// The string at `path` (object keys) in the JSON `body`. Errors name the path, never a value.
result<std::string> take_string(std::string_view body, const std::vector<std::string>& path);

// "<status>: <__type or code>: <message>" from an AWS-style or Google-style error body (at most
// 300 bytes of it), or "<status>" when the body says nothing readable.
std::string aws_error_text(int status, std::string_view body);

}  // namespace iron::secrets
