#include "upstream_proxy/selection.hpp"

#include <algorithm>
#include <cctype>

#include "core/port.hpp"
#include "core/percent.hpp"

namespace iron::upstream_proxy {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}


std::string base64(std::string_view in) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6) out += table[(v >> shift) & 63];
    }
    if (const std::size_t rest = in.size() - i; rest > 0) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (rest == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += rest == 2 ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<upstream_proxy::scheme> scheme_named(std::string_view s) {
    if (s == "http") return scheme::http;
    if (s == "https") return scheme::https;
    if (s == "socks5") return scheme::socks5;
    if (s == "socks5h") return scheme::socks5h;
    return std::nullopt;
}

std::uint16_t default_port(upstream_proxy::scheme s) {
    switch (s) {
        case scheme::http: return 80;
        case scheme::https: return 443;
        case scheme::socks5:
        case scheme::socks5h: return 1080;
    }
    return 80;
}

// host[:port], IPv6 in brackets; the port is "" when absent.
result<std::pair<std::string, std::string>> split_authority(std::string_view hostport) {
    std::string host, port;
    if (!hostport.empty() && hostport.front() == '[') {
        const auto close = hostport.find(']');
        if (close == std::string_view::npos) return make_error("missing ']' in host");
        host = std::string(hostport.substr(1, close - 1));
        auto rest = hostport.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return make_error("unexpected text after ']'");
        if (!rest.empty()) port = std::string(rest.substr(1));
        if (!core::ip_address::parse(host)) return make_error("invalid IPv6 address in brackets");
    } else {
        const auto colon = hostport.rfind(':');
        host = std::string(hostport.substr(0, colon));
        if (colon != std::string_view::npos) port = std::string(hostport.substr(colon + 1));
        if (host.find(':') != std::string::npos) return make_error("an IPv6 host must be in brackets");
    }
    return std::pair{host, port};
}

bool host_chars_ok(std::string_view h) {
    return std::all_of(h.begin(), h.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':';
    });
}

}  // namespace

std::string parent::basic_credentials() const {
    if (!username) return {};
    return "Basic " + base64(*username + ":" + password.value_or(""));
}

std::string parent::authority() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

result<parent> parse_parent(std::string_view url) {
    std::string_view rest = trim(url);
    std::string scheme_text = "http";
    if (const auto sep = rest.find("://"); sep != std::string_view::npos) {
        scheme_text = lower(rest.substr(0, sep));
        rest.remove_prefix(sep + 3);
    }
    parent p;
    const auto s = scheme_named(scheme_text);
    if (!s) return make_error("unsupported proxy scheme \"" + scheme_text + "\" (want http, https, socks5 or socks5h)");
    p.scheme = *s;
    // The authority ends at the first '/', '?' or '#'; only an empty path or "/" may follow.
    const auto end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    if (end != std::string_view::npos && rest.substr(end) != "/")
        return make_error("a proxy URL has no path, query or fragment");
    std::string_view raw_user;  // as written (percent-encoded): what `display` shows
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const auto userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        raw_user = userinfo.substr(0, colon);
        auto user = core::percent_decode_strict(raw_user);
        if (!user) return make_error("invalid percent-encoding in the proxy URL's user name");
        p.username = std::move(*user);
        if (colon != std::string_view::npos) {
            auto pass = core::percent_decode_strict(userinfo.substr(colon + 1));
            if (!pass) return make_error("invalid percent-encoding in the proxy URL's password");
            p.password = std::move(*pass);
        }
    }
    auto hp = split_authority(authority);
    if (!hp) return make_error("invalid proxy host: " + hp.message());
    auto [host, port] = std::move(*hp);
    if (host.empty()) return make_error("missing proxy host");
    if (!host_chars_ok(host)) return make_error("invalid proxy host");
    p.host = lower(host);
    p.port = default_port(p.scheme);
    if (!port.empty()) {
        auto n = core::parse_port(port);
        if (!n) return make_error("invalid proxy port (want 1..65535)");
        p.port = *n;
    }
    p.display = scheme_text + "://";
    if (p.username) p.display += std::string(raw_user) + (p.password ? ":***@" : "@");
    p.display += p.authority();
    return p;
}

no_proxy_list no_proxy_list::parse(std::string_view text) {
    no_proxy_list out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string entry = lower(trim(text.substr(0, comma)));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (entry.empty()) continue;
        if (entry == "*") {
            out.all_ = true;
            continue;
        }
        if (entry.find('/') != std::string::npos) {
            if (auto c = core::cidr::parse(entry)) out.cidrs_.push_back(std::move(*c));
            continue;  // Go skips an entry it cannot use
        }
        std::string host = entry, port;
        if (auto hp = split_authority(entry); hp && !hp->second.empty() && core::parse_port(hp->second)) {
            host = hp->first;
            port = hp->second;
        } else if (!entry.empty() && entry.front() == '[' && entry.back() == ']') {
            host = entry.substr(1, entry.size() - 2);
        }
        if (host.empty()) continue;
        if (auto ip = core::ip_address::parse(host)) {
            out.ips_.push_back({*ip, port});
            continue;
        }
        if (host.rfind("*.", 0) == 0) host.erase(0, 1);
        domain_entry d{host, false, port};
        if (host.front() != '.') {
            d.match_host = true;
            d.suffix = "." + host;
        }
        out.domains_.push_back(std::move(d));
    }
    return out;
}

bool no_proxy_list::bypasses(std::string_view host_in, std::uint16_t port_num) const {
    if (all_) return true;
    const std::string host = lower(trim(host_in));
    const std::string port = std::to_string(port_num);
    if (auto ip = core::ip_address::parse(host)) {
        for (const auto& c : cidrs_)
            if (c.contains(*ip)) return true;
        for (const auto& e : ips_)
            if (e.ip.bytes == ip->bytes && (e.port.empty() || e.port == port)) return true;
    }
    for (const auto& d : domains_) {
        const bool suffix = host.size() >= d.suffix.size() &&
                            host.compare(host.size() - d.suffix.size(), d.suffix.size(), d.suffix) == 0;
        const bool exact = d.match_host && host == std::string_view(d.suffix).substr(1);
        if ((suffix || exact) && (d.port.empty() || d.port == port)) return true;
    }
    return false;
}

result<selector> make_selector(std::string_view http_proxy, std::string_view https_proxy, std::string_view no_proxy) {
    std::optional<parent> parents[2];
    const std::pair<const char*, std::string_view> settings[] = {{"http_proxy", http_proxy}, {"https_proxy", https_proxy}};
    for (int i = 0; i < 2; ++i) {
        if (trim(settings[i].second).empty()) continue;
        auto p = parse_parent(settings[i].second);
        if (!p) return make_error(std::string(settings[i].first) + ": " + p.message());
        parents[i] = std::move(*p);
    }
    return selector(std::move(parents[0]), std::move(parents[1]), no_proxy_list::parse(no_proxy));
}

bool is_loopback_host(std::string_view host_in) {
    const std::string host = lower(host_in);
    if (host == "localhost") return true;
    auto ip = core::ip_address::parse(host);
    if (!ip) return false;
    if (ip->is_v4 || (ip->bytes[10] == 0xff && ip->bytes[11] == 0xff &&
                      std::all_of(ip->bytes.begin(), ip->bytes.begin() + 10, [](auto b) { return b == 0; })))
        return ip->bytes[12] == 127;
    static constexpr std::array<std::uint8_t, 16> v6_loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return ip->bytes == v6_loopback;
}

selector::selector(std::optional<parent> http, std::optional<parent> https, no_proxy_list no_proxy)
    : http_(std::move(http)), https_(std::move(https)), no_proxy_(std::move(no_proxy)) {}

const parent* selector::choose(std::string_view host, std::uint16_t port, bool tls) const {
    const auto& p = tls ? https_ : http_;
    if (!p) return nullptr;
    if (is_loopback_host(host) || no_proxy_.bypasses(host, port)) return nullptr;
    return &*p;
}

}  // namespace iron::upstream_proxy
