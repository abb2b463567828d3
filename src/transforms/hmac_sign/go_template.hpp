#pragma once
// The part of Go's text/template that signing templates use, evaluated the way Go's is with
// `missingkey=error`: literal text; actions {{ pipeline }} with {{- / -}} trim markers and
// {{/* comments */}}; operands `.Field`, `.Map.key`, string literals ("…" or `…`); functions
// print, printf (%s %v %q %x %X %%), index, len, urlquery, and — only where the caller allows it,
// as the MCP gateway's credential formatter does — base64 (standard encoding of its arguments
// joined); pipelines `a | f`.
// Control structures (if/range/with/define/template/block) are refused when the config loads, so
// a template that loads can fail at render time only on data: an unknown field or a missing key,
// which is what a signing transform reports per request (as Go does).
//
// Data: named string fields plus, optionally, one map of strings named `Credentials`. Printing
// the map itself (or `.`) is an error rather than Go's `map[k:v]`, which would put every
// credential into one header.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace iron::transforms::hmac_sign {

struct template_data {
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    const std::vector<std::pair<std::string, std::string>>* credentials = nullptr;  // .Credentials
};

// Functions beyond Go's built-in ones that a template may call (the caller's FuncMap).
struct template_extensions {
    bool base64 = false;
};

class go_template {
public:
    using extensions = template_extensions;
    // `name` appears in errors ("template: hmac_sign.message: …"), as in Go.
    static result<go_template> parse(std::string name, std::string_view text, extensions ext = {});
    // Errors name the field or key, never a value.
    result<std::string> render(const template_data& data) const;
    // The first field of every chain (".Credentials.x" gives "Credentials"): what the template
    // needs from its data, for a warning at load time.
    std::vector<std::string> top_level_fields() const;

    struct node;  // defined in the .cpp

private:
    std::string name_;
    std::shared_ptr<const std::vector<node>> nodes_;
};

}  // namespace iron::transforms::hmac_sign
