#include "mcp/stage.hpp"

#include <limits>

#include "core/headers.hpp"
#include "mcp/filters.hpp"
#include "mcp/jsonrpc.hpp"
#include "mcp/record.hpp"
#include "secrets/await.hpp"

namespace iron::mcp {
namespace {

using pipeline::verdict;

verdict refuse(const policy& p, const request_body& req, std::string_view why) {
    verdict v = verdict::reject(200, "mcp policy: " + std::string(why));
    v.headers.add("Content-Type", "application/json");
    v.body = error_answer(req, p.error_code, p.error_message);
    return v;
}

// The entry for one request message; false in `allowed` when it refuses the body.
boost::json::object judge_message(const server& srv, const message& m, bool body_modified, mcp_record& rec,
                                  bool& allowed) {
    if (m.method == tools_list)
        if (auto key = id_key(m.id)) rec.tools_list_ids().insert(*key);
    if (m.method != tools_call) return message_entry("request", m.method, {}, "allow");
    auto call = tool_call_of(m);
    if (!call) {
        allowed = false;
        return message_entry("request", m.method, {}, "deny", reason::malformed_jsonrpc);
    }
    const std::string_view why = srv.refuse(call->name, call->arguments);
    if (!why.empty()) allowed = false;
    auto entry = message_entry("request", m.method, call->name, why.empty() ? "allow" : "deny", why);
    // A transform that rewrote the body (secrets swapped into it) may have put a real credential
    // in the arguments: only the client's own bytes are recorded.
    if (!body_modified) {
        auto args = record_arguments(call->arguments);
        if (args.json) entry["arguments"] = std::move(*args.json);
        else if (!args.raw.empty()) entry["raw_arguments"] = std::move(args.raw);
    }
    return entry;
}

}  // namespace

bool policy_stage::wants_request_body(const pipeline::exchange& ex) const {
    return ex.method == "POST" && policy_->match(ex) != nullptr;
}

verdict policy_stage::on_request(pipeline::exchange& ex) const {
    verdict v = check_policy(ex);
    if (v.what != verdict::kind::next) return v;
    const gateway_route* route = route_for(ex);
    if (route == nullptr) return v;
    return route_through(*route, ex);
}

// Only until the first fetch of a remote store behind some credential has finished: afterwards
// the plain on_request serves every request.
bool policy_stage::awaits_request(const pipeline::exchange& ex) const {
    return gateway_ && gateway_->any_pending() && policy_->match(ex) != nullptr;
}

boost::asio::awaitable<verdict> policy_stage::on_request_async(pipeline::exchange& ex) const {
    verdict v = check_policy(ex);
    if (v.what != verdict::kind::next) co_return v;
    const gateway_route* route = route_for(ex);
    if (route == nullptr) co_return v;
    std::vector<const secrets::source*> sources = route->sources();
    if (secrets::any_pending(sources)) co_await secrets::await_fetched(std::move(sources), secrets::first_fetch_wait);
    co_return route_through(*route, ex);
}

const gateway_route* policy_stage::route_for(const pipeline::exchange& ex) const {
    // As in the Go proxy: only a request that belongs to one of the policy's servers is routed.
    if (!gateway_ || !ex.mcp_record) return nullptr;
    return gateway_->match(ex);
}

verdict policy_stage::route_through(const gateway_route& route, pipeline::exchange& ex) const {
    auto rec = std::static_pointer_cast<mcp_record>(ex.mcp_record);  // only this stage sets it
    if (auto routed = route_request(route, ex, *rec); !routed) {
        verdict v = verdict::fail(routed.message());
        v.reason = "mcp gateway could not inject a credential";
        return v;
    }
    return verdict::next();
}

void policy_stage::refresh() const {
    if (gateway_) gateway_->reload();
}

verdict policy_stage::check_policy(pipeline::exchange& ex) const {
    const server* srv = policy_->match(ex);
    if (srv == nullptr) return verdict::next();
    auto rec = std::make_shared<mcp_record>(srv->name);
    ex.mcp_record = rec;
    if (ex.method != "POST") return verdict::next();

    const auto& body = ex.request_body;
    if (!body.present || !body.complete) {
        // Not buffered (cannot happen for a POST this stage matched) or seen only in part: a
        // message the policy could not read whole is never forwarded.
        const char* why = body.present ? reason::oversize_body : reason::malformed_jsonrpc;
        rec->add(message_entry("request", {}, {}, "deny", why));
        return refuse(*policy_, request_body{}, why);
    }
    const request_body req = parse_request(body.data);
    if (req.malformed) {
        rec->add(message_entry("request", {}, {}, "deny", reason::malformed_jsonrpc));
        return refuse(*policy_, req, reason::malformed_jsonrpc);
    }
    bool allowed = true;
    std::string first_refusal;
    for (const auto& m : req.messages) {
        auto entry = judge_message(*srv, m, body.modified, *rec, allowed);
        if (!allowed && first_refusal.empty()) first_refusal = entry["reason"].as_string();
        rec->add(std::move(entry));
    }
    if (!allowed) return refuse(*policy_, req, first_refusal);
    if (!rec->tools_list_ids().empty()) ex.request_headers.erase("Accept-Encoding");
    return verdict::next();
}

verdict policy_stage::on_response(pipeline::exchange& ex) const {
    auto rec = std::static_pointer_cast<mcp_record>(ex.mcp_record);  // only this stage sets it
    if (!rec || rec->tools_list_ids().empty()) return verdict::next();
    const server* srv = policy_->find(rec->server());
    if (srv == nullptr) return verdict::next();
    if (auto enc = ex.response_headers.get("Content-Encoding"); enc && !core::iequals(*enc, "identity")) {
        rec->note_not_filtered("content_encoding");
        return verdict::next();
    }
    const auto kind = answer_kind_of(ex.response_headers.get("Content-Type").value_or(""));
    if (kind == answer_kind::other) return verdict::next();
    // No transform trace to report to: the filter writes into the record's own group.
    ex.response_filters.attach(make_answer_filter(kind, policy_, *srv, rec), std::numeric_limits<std::size_t>::max());
    return verdict::next();
}

}  // namespace iron::mcp
