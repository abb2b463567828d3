#include "transforms/judge/client.hpp"

namespace iron::transforms::judge {

result<std::unique_ptr<llm_client>> llm_client::create(base_url url) {
    auto http = outbound::http_client::create(std::move(url));
    if (!http) return http.err();
    return std::unique_ptr<llm_client>(new llm_client(std::move(*http)));
}

boost::asio::awaitable<result<http_reply>> llm_client::post(const provider_call& call, std::chrono::nanoseconds timeout) const {
    outbound::http_request req;
    req.method = "POST";
    req.target = call.path;
    req.headers = call.headers;
    req.body = call.body;
    co_return co_await http_->send(req, timeout);
}

}  // namespace iron::transforms::judge
