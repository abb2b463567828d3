#include "transforms/registry.hpp"

#include <functional>
#include <string_view>

#include "config/yaml_util.hpp"
#include "pipeline/ordering.hpp"
#include "transforms/allowlist.hpp"
#include "transforms/annotate.hpp"
#include "transforms/aws_auth/aws_auth.hpp"
#include "transforms/body_capture.hpp"
#include "transforms/gcp/gcp_auth.hpp"
#include "transforms/gcp/gcp_id_token.hpp"
#include "transforms/grpc/grpc_transform.hpp"
#include "transforms/header_allowlist.hpp"
#include "transforms/hmac_sign/hmac_sign.hpp"
#include "transforms/judge/judge.hpp"
#include "transforms/oauth_token/oauth_token.hpp"
#include "transforms/secrets.hpp"

namespace iron::transforms {
namespace {

using factory = std::function<result<std::unique_ptr<const pipeline::transform>>(const YAML::Node&, const config::yaml_ctx&)>;

struct factory_entry {
    std::string_view name;
    factory make;
};

// Adapts a transform's `from_config` (returning result<unique_ptr<T>>) to the factory signature.
template <class T>
result<std::unique_ptr<const pipeline::transform>> make(const YAML::Node& cfg, const config::yaml_ctx& ctx) {
    auto t = T::from_config(cfg, ctx);
    if (!t) return t.err();
    return std::unique_ptr<const pipeline::transform>(std::move(t).value());
}

// The explicit table of implemented transforms. Adding a transform = one line here.
const std::vector<factory_entry>& factories() {
    static const std::vector<factory_entry> table = {
        {"allowlist", make<allowlist>},
        {"secrets", make<secrets_transform>},
        {"annotate", make<annotate>},
        {"header_allowlist", make<header_allowlist>},
        {"body_capture", make<body_capture>},
        {"judge", make<judge::judge_transform>},
        {"hmac_sign", make<hmac_sign::hmac_sign_transform>},
        {"grpc", make<grpcsvc::grpc_transform>},
        {"oauth_token", make<oauth_token::oauth_token_transform>},
        {"gcp_auth", make<gcp::gcp_auth_transform>},
        {"gcp_id_token", make<gcp::gcp_id_token_transform>},
        {"aws_auth", make<aws_auth::aws_auth_transform>},
    };
    return table;
}

std::string with_where(const std::string& where, const std::string& message) {
    return where.empty() ? message : where + ": " + message;
}

}  // namespace

result<std::shared_ptr<const pipeline::pipeline>> build_pipeline(const std::vector<config::transform_entry>& entries,
                                                                 const std::string& file,
                                                                 std::unique_ptr<const pipeline::transform> last_stage) {
    std::vector<std::unique_ptr<const pipeline::transform>> built;
    std::vector<std::string> where;
    built.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& entry = entries[i];
        const factory_entry* found = nullptr;
        for (const auto& f : factories()) {
            if (f.name == entry.name) {
                found = &f;
                break;
            }
        }
        if (found == nullptr) {
            std::string q = config::go_quote(entry.name);
            return make_error(with_where(entry.where, "unknown transform " + q + ": unknown transform: " + q));
        }
        config::yaml_ctx ctx{file, "transforms[" + std::to_string(i) + "].config"};
        auto t = found->make(entry.config.node(), ctx);
        if (!t) return t.err();
        built.push_back(std::move(t).value());
        where.push_back(entry.where);
    }
    if (auto order = pipeline::check_ordering(built, where); !order) return order.err();
    return std::shared_ptr<const pipeline::pipeline>(std::make_shared<const pipeline::pipeline>(std::move(built), std::move(last_stage)));
}

}  // namespace iron::transforms
