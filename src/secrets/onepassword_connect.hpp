#pragma once
// {type: 1password_connect, secret_ref: "op://vault/item/[section/]field", host_env?, token_env?,
//  ttl?, failure_ttl?, json_key?}: a field of an item in a 1Password Connect server, read through
// Connect's REST API as the Connect SDK reads it: the server from $OP_CONNECT_HOST, a bearer token
// from $OP_CONNECT_TOKEN (host_env / token_env name other variables; read at fetch time); vault
// and item by ID (26 lower-case letters and digits) or by title (a `filter` query that must find
// exactly one); the field by ID or label, within the section by ID or label when the reference
// names one. Display name: the secret_ref.
#include <memory>
#include <string>

#include "core/result.hpp"
#include "secrets/remote_source.hpp"

namespace iron::secrets {

struct op_ref {
    std::string vault, item, section, field;  // section "" when the reference has 3 segments
};
// Errors as the Go proxy's: must start with "op://", 3 or 4 segments, none empty.
result<op_ref> parse_op_ref(std::string_view ref);

std::unique_ptr<store_fetcher> make_op_connect_fetcher(std::string secret_ref, op_ref ref, std::string host_env,
                                                       std::string token_env);

// The value of the field `ref` names in a Connect item (JSON), or the Go proxy's "field … not
// found on item". Exposed for the unit tests.
result<std::string> select_connect_field(std::string_view item_json, const op_ref& ref);

}  // namespace iron::secrets
