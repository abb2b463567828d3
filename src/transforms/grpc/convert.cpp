#include "transforms/grpc/convert.hpp"

#include <google/protobuf/struct.pb.h>

namespace iron::transforms::grpcsvc {
namespace {

using google::protobuf::Value;

bool is_tchar(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

bool is_field_value(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

// One JSON annotation value as a google.protobuf.Value (every JSON value has one).
void to_value(const boost::json::value& in, Value& out) {
    switch (in.kind()) {
        case boost::json::kind::null: out.set_null_value(google::protobuf::NULL_VALUE); return;
        case boost::json::kind::bool_: out.set_bool_value(in.get_bool()); return;
        case boost::json::kind::int64: out.set_number_value(static_cast<double>(in.get_int64())); return;
        case boost::json::kind::uint64: out.set_number_value(static_cast<double>(in.get_uint64())); return;
        case boost::json::kind::double_: out.set_number_value(in.get_double()); return;
        case boost::json::kind::string: out.set_string_value(std::string(in.get_string())); return;
        case boost::json::kind::array:
            for (const auto& item : in.get_array()) to_value(item, *out.mutable_list_value()->add_values());
            if (in.get_array().empty()) out.mutable_list_value();
            return;
        case boost::json::kind::object:
            for (const auto& [key, item] : in.get_object())
                to_value(item, (*out.mutable_struct_value()->mutable_fields())[std::string(key)]);
            if (in.get_object().empty()) out.mutable_struct_value();
            return;
    }
}

}  // namespace

void fill_context(const pipeline::exchange& ex, v1::TransformContext& out) {
    out.set_sni(ex.sni);
    if (ex.tunnel == nullptr) return;
    auto* tunnel = out.mutable_tunnel();
    tunnel->set_target(ex.tunnel->target);
    for (const auto& tr : ex.tunnel->request_transforms) {
        auto* t = tunnel->add_request_transforms();
        t->set_name(tr.name);
        if (tr.annotations.empty()) continue;  // unset, not an empty Struct
        auto& fields = *t->mutable_annotations()->mutable_fields();
        for (const auto& [key, value] : tr.annotations) to_value(value, fields[std::string(key)]);
    }
}

void fill_request(const pipeline::exchange& ex, bool with_body, v1::HttpRequest& out) {
    out.set_method(ex.method);
    out.set_url(ex.raw_query.empty() ? ex.raw_path : ex.raw_path + "?" + ex.raw_query);
    core::header_list headers = ex.request_headers;
    headers.erase("Host");  // the `host` field carries it, as in the Go proxy
    headers_to_map(headers, *out.mutable_headers());
    out.set_host(ex.host);
    out.set_remote_addr(ex.remote_addr);
    if (with_body && ex.request_body.present && ex.request_body.complete) out.set_body(ex.request_body.data);
}

void fill_response(const pipeline::exchange& ex, bool with_body, v1::HttpResponse& out) {
    out.set_status_code(ex.status);
    headers_to_map(ex.response_headers, *out.mutable_headers());
    if (with_body && ex.response_body.present && ex.response_body.complete) out.set_body(ex.response_body.data);
}

void headers_to_map(const core::header_list& headers, google::protobuf::Map<std::string, v1::HeaderValues>& out) {
    for (const auto& h : headers.entries()) {
        auto it = out.begin();
        for (; it != out.end(); ++it)
            if (core::iequals(it->first, h.name)) break;
        if (it == out.end()) it = out.insert({h.name, v1::HeaderValues()}).first;
        it->second.add_values(h.value);
    }
}

result<core::header_list> headers_from_map(const google::protobuf::Map<std::string, v1::HeaderValues>& in) {
    core::header_list out;
    for (const auto& [name, values] : in) {
        if (!is_token(name)) return make_error("header name " + std::string(name.size() > 64 ? "(long)" : name) + " is not a token");
        for (const auto& value : values.values()) {
            if (!is_field_value(value)) return make_error("header " + name + " has a value with CR, LF or NUL");
            out.add(name, value);
        }
    }
    return out;
}

void note_annotations(pipeline::exchange& ex, const google::protobuf::Map<std::string, std::string>& annotations) {
    for (const auto& [key, value] : annotations) ex.note(key, boost::json::value(value));
}

}  // namespace iron::transforms::grpcsvc
