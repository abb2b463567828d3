// `iron-proxy egress list|add|remove|mode`: the management API's runtime egress routes from the
// command line (admin/egress_routes.hpp).
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "app/cli.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "net/listener.hpp"
#include "outbound/http_client.hpp"

namespace iron::cli {
namespace {

namespace json = boost::json;

const char* const egress_usage =
    "Usage: iron-proxy egress list [-json]                     mode and rules (ids, config or runtime)\n"
    "       iron-proxy egress add -host GLOB | -cidr CIDR      allow one more host or CIDR at runtime\n"
    "       iron-proxy egress remove ID                        remove a runtime rule\n"
    "       iron-proxy egress mode warn|enforce                switch the allowlists' mode\n"
    "  -management HOST:PORT  the management API (default: management.listen of -config)\n"
    "  -config FILE           the proxy's config file, for management.listen and management.api_key_env\n"
    "  The bearer key is read from IRON_MANAGEMENT_API_KEY (or the variable management.api_key_env names).\n";

struct target {
    std::string address;  // host:port to connect to
    std::string key_env = "IRON_MANAGEMENT_API_KEY";
};

int usage_error(const std::string& why) {
    std::fprintf(stderr, "error: %s\n%s", why.c_str(), egress_usage);
    return 2;
}

// A listen address (":9091", "0.0.0.0:9091", "[::]:9091") as an address to connect to.
result<std::string> connect_address(const std::string& listen) {
    auto ep = net::parse_listen_address(listen);
    if (!ep) return make_error("management address " + listen + ": " + ep.message());
    auto a = ep->address();
    if (a.is_unspecified()) a = a.is_v6() ? boost::asio::ip::address(boost::asio::ip::address_v6::loopback())
                                          : boost::asio::ip::address(boost::asio::ip::address_v4::loopback());
    const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
    return host + ":" + std::to_string(ep->port());
}

result<target> find_target(const std::map<std::string, std::string>& flags) {
    target t;
    std::string listen;
    if (auto it = flags.find("config"); it != flags.end()) {
        auto cfg = config::load_file(it->second);
        if (!cfg) return cfg.err();
        listen = cfg->management.listen;
        if (!cfg->management.api_key_env.empty()) t.key_env = cfg->management.api_key_env;
        if (listen.empty()) return make_error(it->second + ": management.listen is not set");
    }
    if (auto it = flags.find("management"); it != flags.end()) listen = it->second;
    if (listen.empty()) return make_error("say where the management API listens: -management HOST:PORT or -config FILE");
    auto address = connect_address(listen);
    if (!address) return address.err();
    t.address = *address;
    return t;
}

// One call; the reply's JSON object, or the error to print (unreachable, refused, not JSON).
result<json::object> call(const target& t, const char* method, const std::string& path, const std::string& body) {
    const char* key = std::getenv(t.key_env.c_str());
    if (!key || !*key) return make_error(t.key_env + " is not set: it holds the management API's bearer key");
    auto url = outbound::parse_base_url("http://" + t.address, "management address");
    if (!url) return url.err();
    auto client = outbound::http_client::create(*url);
    if (!client) return client.err();
    outbound::http_request req{method, path, {}, body};
    req.headers.add("Authorization", std::string("Bearer ") + key);
    if (!body.empty()) req.headers.add("Content-Type", "application/json");
    auto reply = (*client)->send_blocking(req, std::chrono::seconds(10));
    if (!reply) return make_error("cannot reach the management API at " + t.address + ": " + reply.message());
    boost::system::error_code ec;
    json::value v = json::parse(reply->body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const std::string status = std::to_string(reply->status);
    if (!o) return make_error("the management API at " + t.address + " answered " + status + " without a JSON body");
    if (reply->status == 401) return make_error("the proxy refused the key (401): check " + t.key_env);
    if (reply->status >= 300) {
        const json::value* e = o->if_contains("error");
        const std::string why = e && e->is_string() ? std::string(e->as_string()) : json::serialize(*o);
        return make_error("the proxy refused (" + status + "): " + why);
    }
    return std::move(v.as_object());
}

std::string text_of(const json::value* v) {
    if (!v) return "";
    return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
}

// "rt-1  runtime  host  x.example": the rule's kind is whichever of host/cidr/group/rule it has.
std::string rule_line(const json::object& r) {
    std::string kind = "?", value;
    for (const char* k : {"host", "cidr", "group", "rule"})
        if (const json::value* v = r.if_contains(k)) kind = k, value = text_of(v);
    char line[512];
    std::snprintf(line, sizeof line, "%-8s %-8s %-6s ", text_of(r.if_contains("id")).c_str(),
                  text_of(r.if_contains("source")).c_str(), kind.c_str());
    return line + value;
}

int print_list(const json::object& o, bool as_json) {
    if (as_json) {
        std::printf("%s\n", json::serialize(o).c_str());
        return 0;
    }
    std::printf("mode: %s (%s; config: %s)\n", text_of(o.if_contains("mode")).c_str(),
                text_of(o.if_contains("mode_source")).c_str(), text_of(o.if_contains("config_mode")).c_str());
    if (const json::value* rules = o.if_contains("rules"); rules && rules->is_array())
        for (const auto& r : rules->as_array())
            if (r.is_object()) std::printf("%s\n", rule_line(r.as_object()).c_str());
    return 0;
}

int finish(const result<json::object>& r, const char* verb) {
    if (!r) {
        std::fprintf(stderr, "error: %s\n", r.message().c_str());
        return 1;
    }
    const json::object& o = *r;
    if (const json::value* removed = o.if_contains("removed"); removed && removed->is_object())
        std::printf("%s %s\n", verb, rule_line(removed->as_object()).c_str());
    else if (o.contains("id")) std::printf("%s %s\n", verb, rule_line(o).c_str());
    else std::printf("%s %s\n", verb, text_of(o.if_contains("mode")).c_str());
    return 0;
}

// Ids are "rt-N" / "cfg-N": anything else would not be a path segment of its own.
bool plain_id(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    return true;
}

int run_verb(const std::string& verb, const std::vector<std::string>& rest, const std::map<std::string, std::string>& f,
             const target& t) {
    if (verb == "add" && rest.empty() && (f.count("host") + f.count("cidr")) == 1) {
        const char* key = f.count("host") ? "host" : "cidr";
        return finish(call(t, "POST", "/v1/egress/rules", json::serialize(json::object{{key, f.at(key)}})), "added");
    }
    if (verb == "remove" && rest.size() == 1 && plain_id(rest[0])) return finish(call(t, "DELETE", "/v1/egress/rules/" + rest[0], ""), "removed");
    if (verb == "mode" && rest.size() == 1 && (rest[0] == "warn" || rest[0] == "enforce"))
        return finish(call(t, "PUT", "/v1/egress/mode", json::serialize(json::object{{"mode", rest[0]}})), "mode");
    return usage_error("bad arguments for \"egress " + verb + "\"");
}

}  // namespace

int egress_command(const std::vector<std::string>& args) {
    std::vector<std::string> positionals;
    auto flags = app::parse_flags(args, {"management", "config", "host", "cidr"}, {"json", "h", "help"}, &positionals);
    if (!flags) return usage_error(flags.message());
    if (flags->count("h") || flags->count("help")) {
        std::fprintf(stdout, "%s", egress_usage);  // asked for: stdout, so `| less` works
        return 0;
    }
    if (positionals.empty()) return usage_error("missing verb: list, add, remove or mode");
    const std::string verb = positionals[0];
    if (verb != "list" && verb != "add" && verb != "remove" && verb != "mode") return usage_error("unknown verb \"" + verb + "\"");
    auto t = find_target(*flags);
    if (!t) {
        std::fprintf(stderr, "error: %s\n", t.message().c_str());
        return 1;
    }
    const std::vector<std::string> rest(positionals.begin() + 1, positionals.end());
    if (verb == "list" && rest.empty()) {
        auto r = call(*t, "GET", "/v1/egress", "");
        if (!r) return finish(r, "");
        return print_list(*r, flags->count("json") && flags->at("json") != "false" && flags->at("json") != "0");
    }
    return run_verb(verb, rest, *flags, *t);
}

}  // namespace iron::cli
