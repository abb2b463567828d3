#include "transforms/judge/judge.hpp"

#include "core/log.hpp"
#include "transforms/judge/envelope.hpp"

namespace iron::transforms::judge {
namespace {

using clock = std::chrono::steady_clock;
using pipeline::verdict;

// An annotation's string value (a copy).
boost::json::value text(std::string_view s) { return boost::json::value(s); }

double ms_since(clock::time_point start) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count();
    return static_cast<double>(us) / 1000.0;
}

// One of max_concurrent slots, held for the whole call (given back however the call ends).
class concurrency_slot {
public:
    concurrency_slot(std::atomic<std::int64_t>& in_flight, std::int64_t max)
        : in_flight_(in_flight), taken_(in_flight.fetch_add(1, std::memory_order_acq_rel) < max) {}
    ~concurrency_slot() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }
    concurrency_slot(const concurrency_slot&) = delete;
    concurrency_slot& operator=(const concurrency_slot&) = delete;
    bool taken() const { return taken_; }

private:
    std::atomic<std::int64_t>& in_flight_;
    bool taken_;
};

}  // namespace

judge_transform::judge_transform(judge_settings s, std::vector<pipeline::host_rule> rules,
                                 std::unique_ptr<llm_client> client)
    : settings_(std::move(s)),
      rules_(std::move(rules)),
      client_(std::move(client)),
      system_prompt_(system_prompt(settings_.prompt)),
      breaker_(static_cast<std::size_t>(settings_.breaker_failures),
               std::chrono::duration_cast<circuit_breaker::clock::duration>(settings_.breaker_cooldown)) {}

verdict judge_transform::on_request(pipeline::exchange& ex) const {
    if (!rules_.matches_any(ex)) return verdict::next();
    return verdict::fail("judge " + settings_.name + " was not awaited");
}

std::string judge_transform::scrub(std::string text) const {
    const std::string& key = settings_.api_key;
    if (key.empty()) return text;
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at))
        text.replace(at, key.size(), "[REDACTED]");
    return text;
}

// The model is a third party: real credentials that transforms before this one put into the
// request (placed there despite the start-up warning) are shown as "[REDACTED]".
std::string judge_transform::envelope_for(const pipeline::exchange& ex) const {
    std::string url = ex.raw_path;
    if (!ex.raw_query.empty()) url += "?" + ex.raw_query;
    const bool hide = !ex.injected_secrets.empty();
    core::header_list hidden_headers;
    if (hide) {
        url = ex.hide_injected(url);
        for (const auto& h : ex.request_headers.entries()) hidden_headers.add(h.name, ex.hide_injected(h.value));
    }
    request_view view;
    view.method = ex.method;
    view.url = url;
    view.host = ex.host;
    view.headers = hide ? &hidden_headers : &ex.request_headers;
    std::string hidden_body;
    if (ex.request_body.present) {
        std::string_view body = ex.request_body.data;
        if (hide) {
            hidden_body = ex.hide_injected(body);
            body = hidden_body;
        }
        view.body = body.substr(0, max_body_bytes);
        view.body_truncated = body.size() > max_body_bytes || !ex.request_body.complete;
    }
    return build_envelope(view);
}

verdict judge_transform::fallback(pipeline::exchange& ex, std::string_view why, clock::time_point start) const {
    const bool deny = settings_.fallback == fallback_mode::deny;
    ex.note("judge.fallback_applied", deny ? "deny" : "skip");
    ex.note("judge.decision", deny ? "FALLBACK_DENY" : "FALLBACK_ALLOW");
    ex.note("judge.reason", text(cap_reason(scrub(std::string(why)))));
    ex.note("judge.duration_ms", ms_since(start));
    if (!deny) return verdict::next();
    return verdict::reject(403, "judge " + settings_.name + " could not decide (fallback: deny)");
}

verdict judge_transform::decide(pipeline::exchange& ex, const model_answer& answer, circuit_breaker::permit& permit,
                                clock::time_point start) const {
    ex.note("judge.input_tokens", answer.input_tokens);
    ex.note("judge.output_tokens", answer.output_tokens);
    if (!answer.model.empty()) ex.note("judge.model", text(valid_utf8(answer.model)));
    auto parsed = parse_decision(answer.text);
    if (!parsed) {
        permit.settle(circuit_breaker::outcome::failure);
        ex.note("judge.raw_output", text(valid_utf8(cap_raw_output(scrub(answer.text)))));
        return fallback(ex, "parsing decision: " + parsed.message(), start);
    }
    permit.settle(circuit_breaker::outcome::success);
    ex.note("judge.decision", parsed->allow ? "ALLOW" : "DENY");
    ex.note("judge.reason", text(valid_utf8(cap_reason(scrub(parsed->reason)))));
    ex.note("judge.duration_ms", ms_since(start));
    if (parsed->allow) return verdict::next();
    return verdict::reject(403, "denied by judge " + settings_.name);
}

boost::asio::awaitable<verdict> judge_transform::on_request_async(pipeline::exchange& ex) const {
    if (!rules_.matches_any(ex)) co_return verdict::next();
    const auto start = clock::now();
    ex.note("judge.instance", text(settings_.name));
    ex.note("judge.model", text(settings_.model));

    concurrency_slot slot(in_flight_, settings_.max_concurrent);
    if (!slot.taken())
        co_return fallback(ex, "max_concurrent (" + std::to_string(settings_.max_concurrent) + ") calls in flight", start);
    circuit_breaker::permit permit = breaker_.try_acquire();
    if (!permit) {
        ex.note("judge.circuit_breaker_tripped", true);
        co_return fallback(ex, "circuit breaker open", start);
    }

    const provider_call call = build_call(settings_.provider, settings_.model, settings_.max_tokens, settings_.api_key,
                                          system_prompt_, envelope_for(ex));
    result<http_reply> reply = co_await client_->post(call, settings_.timeout);
    result<model_answer> answer = make_error("no answer");
    if (!reply) answer = make_error("calling " + std::string(provider_name(settings_.provider)) + ": " + reply.message());
    else answer = parse_answer(settings_.provider, reply->status, reply->body);
    if (!answer) {
        permit.settle(circuit_breaker::outcome::failure);
        const std::string why = scrub("adapter error: " + answer.message());
        log::warn("judge adapter error", {{"instance", settings_.name}, {"err", why}});
        co_return fallback(ex, why, start);
    }
    co_return decide(ex, *answer, permit, start);
}

}  // namespace iron::transforms::judge
