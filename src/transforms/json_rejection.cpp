#include "transforms/json_rejection.hpp"

#include <string>

#include <boost/json/string_view.hpp>

namespace iron::transforms {

pipeline::verdict json_rejection(pipeline::exchange& ex, int status, std::string_view transform,
                                 std::string_view reason) {
    ex.note("rejected", boost::json::string_view(reason.data(), reason.size()));
    pipeline::verdict v = pipeline::verdict::reject(status, std::string(transform) + ": " + std::string(reason));
    v.headers.add("Content-Type", "application/json");
    v.body = R"({"error":")" + std::string(transform) + R"(","reason":")" + std::string(reason) + R"("})";
    return v;
}

}  // namespace iron::transforms
