#include "secrets/onepassword_connect.hpp"

#include <cstdlib>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>

#include "config/yaml_util.hpp"
#include "secrets/store_reply.hpp"
#include "core/percent.hpp"

namespace iron::secrets {
namespace {

namespace json = boost::json;
using config::go_quote;

// The Connect SDK's test for an ID rather than a title.
bool is_op_id(std::string_view s) {
    if (s.size() != 26) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
    return true;
}


// `"title"` inside a filter: quotes and backslashes escaped.
std::string filter_literal(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string str_field(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

class op_connect_fetcher final : public store_fetcher {
public:
    op_connect_fetcher(std::string secret_ref, op_ref ref, std::string host_env, std::string token_env)
        : secret_ref_(std::move(secret_ref)), ref_(std::move(ref)), host_env_(std::move(host_env)), token_env_(std::move(token_env)) {}

    result<std::string> fetch(outbound::cancel_handle& cancel) override {
        const std::string what = "resolving 1password_connect secret " + go_quote(secret_ref_);
        if (auto ok = connect(); !ok) return make_error("creating 1password_connect client: " + ok.message());
        auto vault = find_id("/v1/vaults", ref_.vault, "name", cancel);
        if (!vault) return make_error(what + ": looking up vault " + go_quote(ref_.vault) + ": " + vault.message());
        const std::string items = "/v1/vaults/" + *vault + "/items";
        auto item_id = find_id(items, ref_.item, "title", cancel);
        if (!item_id) return make_error(what + ": looking up item " + go_quote(ref_.item) + ": " + item_id.message());
        auto item = get(items + "/" + *item_id, cancel);
        if (!item) return make_error(what + ": looking up item " + go_quote(ref_.item) + ": " + item.message());
        auto value = select_connect_field(item->body, ref_);
        OPENSSL_cleanse(item->body.data(), item->body.size());
        if (!value) return make_error(what + ": " + value.message());
        if (value->empty()) return make_error("1password_connect secret " + go_quote(secret_ref_) + " resolved to empty value");
        return value;
    }

private:
    result<void> connect() {
        const char* host = std::getenv(host_env_.c_str());
        if (host == nullptr || *host == '\0') return make_error("env var " + go_quote(host_env_) + " is not set or empty");
        const char* token = std::getenv(token_env_.c_str());
        if (token == nullptr || *token == '\0') return make_error("env var " + go_quote(token_env_) + " is not set or empty");
        if (!client_ || host != host_) {
            auto url = outbound::parse_base_url(host, host_env_);
            if (!url) return url.err();
            auto client = outbound::http_client::create(std::move(*url));
            if (!client) return client.err();
            client_ = std::move(*client);
            host_ = host;
        }
        if (!token_.empty()) OPENSSL_cleanse(token_.data(), token_.size());
        token_ = token;
        return ok();
    }

    result<outbound::http_reply> get(const std::string& target, outbound::cancel_handle& cancel) {
        outbound::http_request req;
        req.method = "GET";
        req.target = target;
        req.headers.add("Authorization", "Bearer " + token_);
        req.headers.add("Accept", "application/json");
        auto reply = client_->send_blocking(req, remote_source::fetch_timeout, &cancel);
        OPENSSL_cleanse(req.headers.entries()[0].value.data(), req.headers.entries()[0].value.size());
        if (!reply) return reply;
        if (reply->status != 200) return make_error(aws_error_text(reply->status, reply->body));
        return reply;
    }

    // A vault's or item's ID: `key` is used as given when it looks like one, else looked up by
    // title (`by` = "name" for vaults, "title" for items), which must find exactly one.
    result<std::string> find_id(const std::string& collection, const std::string& key, const char* by,
                                outbound::cancel_handle& cancel) {
        if (is_op_id(key)) return key;
        auto reply = get(collection + "?filter=" + core::percent_encode(std::string(by) + " eq " + filter_literal(key)), cancel);
        if (!reply) return reply.err();
        boost::system::error_code ec;
        json::value list = json::parse(reply->body, ec);
        if (ec || !list.is_array()) return make_error("reply is not a JSON list");
        std::vector<std::string> ids;
        for (const auto& e : list.get_array())
            if (e.is_object() && str_field(e.get_object(), by) == key) ids.push_back(str_field(e.get_object(), "id"));
        if (ids.size() != 1) return make_error("found " + std::to_string(ids.size()) + " with " + by + " " + go_quote(key));
        return ids[0];
    }

    std::string secret_ref_;
    op_ref ref_;
    std::string host_env_, token_env_;
    std::string host_, token_;
    std::unique_ptr<outbound::http_client> client_;
};

}  // namespace

result<op_ref> parse_op_ref(std::string_view ref) {
    if (!ref.starts_with("op://")) return make_error("secret_ref " + go_quote(ref) + " must start with \"op://\"");
    std::vector<std::string> parts;
    std::string_view rest = ref.substr(5);
    while (true) {
        const auto slash = rest.find('/');
        parts.emplace_back(rest.substr(0, slash));
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    if (parts.size() < 3 || parts.size() > 4)
        return make_error("secret_ref " + go_quote(ref) + " must have 3 or 4 path segments (op://vault/item/[section/]field)");
    for (const auto& p : parts)
        if (p.empty()) return make_error("secret_ref " + go_quote(ref) + " has an empty path segment");
    op_ref out{parts[0], parts[1], "", parts.back()};
    if (parts.size() == 4) out.section = parts[2];
    return out;
}

result<std::string> select_connect_field(std::string_view item_json, const op_ref& ref) {
    boost::system::error_code ec;
    json::value item = json::parse(item_json, ec);
    if (ec || !item.is_object()) return make_error("item reply is not a JSON object");
    // Connect gives a field's section as {"id"}; its label is in the item's "sections".
    auto section_label = [&](const std::string& id) {
        if (const auto* secs = item.get_object().if_contains("sections"); secs && secs->is_array())
            for (const auto& s : secs->get_array())
                if (s.is_object() && str_field(s.get_object(), "id") == id) return str_field(s.get_object(), "label");
        return std::string();
    };
    std::optional<std::string> found;
    if (const auto* fields = item.get_object().if_contains("fields"); fields && fields->is_array()) {
        for (const auto& f : fields->get_array()) {
            if (!f.is_object()) continue;
            const auto& fo = f.get_object();
            if (str_field(fo, "id") != ref.field && str_field(fo, "label") != ref.field) continue;
            if (!ref.section.empty()) {
                const auto* sec = fo.if_contains("section");
                if (sec == nullptr || !sec->is_object()) continue;
                const std::string id = str_field(sec->get_object(), "id");
                const std::string label = str_field(sec->get_object(), "label");
                if (id != ref.section && label != ref.section && section_label(id) != ref.section) continue;
            }
            found = str_field(fo, "value");
            break;
        }
    }
    // Wipe every value the item held, found or not.
    if (auto* fields = item.get_object().if_contains("fields"); fields && fields->is_array())
        for (auto& f : fields->get_array())
            if (f.is_object())
                if (auto* v = f.get_object().if_contains("value"); v && v->is_string() && !v->get_string().empty())
                    OPENSSL_cleanse(v->get_string().data(), v->get_string().size());
    if (found) return std::move(*found);
    if (!ref.section.empty())
        return make_error("field " + go_quote(ref.field) + " in section " + go_quote(ref.section) + " not found on item");
    return make_error("field " + go_quote(ref.field) + " not found on item");
}

std::unique_ptr<store_fetcher> make_op_connect_fetcher(std::string secret_ref, op_ref ref, std::string host_env,
                                                       std::string token_env) {
    return std::make_unique<op_connect_fetcher>(std::move(secret_ref), std::move(ref), std::move(host_env), std::move(token_env));
}

}  // namespace iron::secrets
