#include "transforms/body_capture.hpp"

#include "config/yaml_util.hpp"

#include <boost/json/object.hpp>

namespace iron::transforms {

std::string_view utf8_trim_end(std::string_view p) {
    // Walk back over continuation bytes (at most 3) to the lead byte of the last sequence; if that
    // sequence needs more bytes than remain, drop it.
    for (std::size_t back = 1; back <= 4 && back <= p.size(); ++back) {
        auto c = static_cast<unsigned char>(p[p.size() - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        std::size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (need > back) p.remove_suffix(back);
        break;
    }
    return p;
}

std::string_view utf8_prefix(std::string_view s, std::size_t max) {
    return s.size() <= max ? s : utf8_trim_end(s.substr(0, max));
}

result<std::unique_ptr<body_capture>> body_capture::from_config(const YAML::Node& config, const config::yaml_ctx& ctx) {
    const char* no_rules = "body_capture: at least one rule is required (without rules nothing is captured)";
    if (config::is_absent(config)) return ctx.fail(config, no_rules);
    if (auto r = config::expect_map(config, ctx, {"max_request_body_bytes", "rules"}); !r) return r.err();
    std::int64_t max = 0;
    const YAML::Node m = config["max_request_body_bytes"];
    if (!config::is_absent(m)) {
        auto v = config::get_int(m, ctx.child("max_request_body_bytes"));
        if (!v) return v.err();
        max = *v;
    }
    auto rules = pipeline::parse_rules(config["rules"], ctx.child("rules"));
    if (!rules) return rules.err();
    if (rules->empty()) return ctx.fail(config::is_absent(config["rules"]) ? config : config["rules"], no_rules);
    return std::make_unique<body_capture>(std::move(*rules), max);
}

bool body_capture::wants_request_body(const pipeline::exchange& ex) const { return rules_.matches_any(ex); }

pipeline::verdict body_capture::on_request(pipeline::exchange& ex) const {
    if (!rules_.matches_any(ex)) return pipeline::verdict::next();
    const auto& body = ex.request_body;
    if (!body.present || body.data.empty()) return pipeline::verdict::next();

    const auto cap = static_cast<std::size_t>(max_bytes_);
    const bool truncated = body.data.size() > cap || !body.complete;
    // A prefix cut by either cap may end inside a UTF-8 sequence; a complete body is kept as is.
    std::string_view captured = truncated ? utf8_trim_end(std::string_view(body.data).substr(0, cap))
                                          : std::string_view(body.data);

    boost::json::object group;
    group["request_body"] = captured;
    group["request_body_truncated"] = truncated;
    ex.body_capture = std::move(group);
    ex.note("captured_bytes", static_cast<std::int64_t>(captured.size()));
    ex.note("truncated", truncated);
    return pipeline::verdict::next();
}

}  // namespace iron::transforms
