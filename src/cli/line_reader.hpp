#pragma once
// Reading audit files line by line, once or `tail -F` style: a followed file is polled, and when
// it is rotated (the path now names another inode) the rest of the old file is read before the new
// one is opened from its start; when it is truncated (shorter than what was read) reading starts
// again at its beginning. "-" is standard input.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace iron::cli {

using line_fn = std::function<void(const std::string& line)>;

// Calls `on_line` for each complete line of `path` ("-": stdin); a last line without newline too.
// Returns false (with `error` set) when the file cannot be opened.
bool read_lines(const std::string& path, const line_fn& on_line, std::string& error);

// Follows `paths` until `keep_going()` says stop (checked between polls, every `poll_ms`): every
// line already in them first, then new lines as they are written. A path that does not exist yet
// is waited for. stdin ("-") is read until its end.
void follow_lines(const std::vector<std::string>& paths, const line_fn& on_line,
                  const std::function<bool()>& keep_going, int poll_ms = 200);

}  // namespace iron::cli
