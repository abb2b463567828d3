#include "app/app.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json/array.hpp>
#include <yaml-cpp/yaml.h>

#include "admin/routes.hpp"
#include "app/drain.hpp"
#include "app/embedded_default.hpp"
#include "app/sd_notify.hpp"
#include "config/yaml_util.hpp"
#include "admin/server.hpp"
#include "audit/sink.hpp"
#include "core/cidr.hpp"
#include "core/log.hpp"
#include "dns/codec.hpp"
#include "dns/server.hpp"
#include "egress/controller.hpp"
#include "runtime/state.hpp"
#include "http/upstream.hpp"
#include "intercept/intercept.hpp"
#include "mcp/stage.hpp"
#include "metrics/metrics.hpp"
#include "h2/client_pool.hpp"
#include "net/dialer.hpp"
#include "upstream_proxy/router.hpp"
#include "net/listener.hpp"
#include "net/loop_guard.hpp"
#include "net/resolver.hpp"
#include "otel/exporter.hpp"
#include "tls/ca.hpp"
#include "tls/contexts.hpp"
#include "tls/leaf_cache.hpp"
#include "transforms/grpc/channel.hpp"
#include "transforms/registry.hpp"
#include "tunnel/tunnel.hpp"

namespace iron::app {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Features whose keys the schema accepts but this build does not implement yet. Those that would
// weaken policy if ignored (MCP gates, the Postgres proxy) stop start-up; the rest warn.
result<void> refuse_unsupported(const config::config& cfg) {
    if (!cfg.refused_sections.empty()) return make_error(cfg.refused_sections.front());
    return ok();
}

void warn_unsupported(const config::config& cfg) {
    for (const auto& what : cfg.not_yet_supported) log::warn("not yet supported", {{"feature", what}});
}

// The transforms, then the MCP policy (with the MCP gateway's routes) as the pipeline's last stage
// when the config has one. Gateway routes without a policy are still checked: they apply to
// nothing, and start-up says so (log_policy).
result<std::shared_ptr<const pipeline::pipeline>> make_pipeline(const config::config& cfg) {
    auto mcp_policy = mcp::parse_policy(cfg.mcp.node(), cfg.source);
    if (!mcp_policy) return mcp_policy.err();
    auto gateway = mcp::parse_gateway(cfg.mcp_gateway.node(), cfg.source);
    if (!gateway) return gateway.err();
    std::unique_ptr<const pipeline::transform> last_stage;
    if (*mcp_policy) last_stage = std::make_unique<const mcp::policy_stage>(std::move(**mcp_policy), std::move(*gateway));
    return transforms::build_pipeline(cfg.transforms, cfg.source, std::move(last_stage));
}

// The pipeline and the limits it works with, from `cfg` as given (the runtime egress overlay
// already applied, when there is one).
result<std::shared_ptr<const runtime::request_policy>> make_request_policy(const config::config& cfg) {
    auto pipe = make_pipeline(cfg);
    if (!pipe) return pipe.err();
    auto p = std::make_shared<runtime::request_policy>();
    p->pipeline = std::move(*pipe);
    p->max_request_body_bytes = cfg.proxy.max_request_body_bytes;
    p->max_response_body_bytes = cfg.proxy.max_response_body_bytes;
    p->forward_oversize_body = cfg.proxy.oversize_body == "forward";
    p->reason_body = cfg.proxy.deny_body == "reason";
    return std::shared_ptr<const runtime::request_policy>(std::move(p));
}

struct proxy_runtime {
    std::shared_ptr<runtime::shared_state> shared;
    egress::runtime_state egress;  // from management.state_path: joins the config's allowlists
    std::shared_ptr<tls::leaf_cache> leaves;
    core::deny_list deny;
    std::shared_ptr<const upstream_proxy::selector> chain;  // proxy.upstream_proxy / HTTP(S)_PROXY
    std::shared_ptr<otel::exporter> otel;  // set when OTEL_EXPORTER_OTLP_(LOGS_)ENDPOINT is
};

// The audit sink's observers: the request metrics, and the OTLP log exporter when the environment
// asks for one (its settings are checked here, so -check and start-up refuse the same mistakes).
result<std::shared_ptr<audit::observer_list>> make_audit_observers(proxy_runtime& rt) {
    auto observers = std::make_shared<audit::observer_list>();
    observers->add(std::make_shared<metrics::request_observer>());
    auto otel_settings = otel::settings_from_env();
    if (!otel_settings) return otel_settings.err();
    if (*otel_settings) {
        auto exp = otel::exporter::create(std::move(**otel_settings));
        if (!exp) return exp.err();
        rt.otel = std::move(*exp);
        observers->add(rt.otel);
    }
    return observers;
}

result<proxy_runtime> build_runtime(const config::config& cfg) {
    if (auto r = refuse_unsupported(cfg); !r) return r.err();
    proxy_runtime rt;
    auto shared = std::make_shared<runtime::shared_state>();
    shared->proxy = cfg.proxy;
    shared->tls_mode = cfg.tls.mode;

    auto saved = egress::load_state(cfg.management.state_path);  // "" = nothing saved
    if (!saved) return saved.err();
    rt.egress = std::move(*saved);
    auto policy = make_request_policy(egress::controller::overlaid(cfg, rt.egress));
    if (!policy) return policy.err();
    shared->policies = std::make_shared<runtime::policy_slot>(std::move(*policy));

    auto deny = core::deny_list::parse(cfg.proxy.upstream_deny_cidrs);
    if (!deny) return deny.err();
    rt.deny = std::move(*deny);
    const auto& up = cfg.proxy.upstream_proxy;
    auto chain = upstream_proxy::make_selector(up.http_proxy, up.https_proxy, up.no_proxy);
    if (!chain) return make_error("proxy.upstream_proxy." + chain.message());
    rt.chain = std::make_shared<const upstream_proxy::selector>(std::move(*chain));

    if (cfg.tls.mode == "mitm") {
        auto ca = tls::certificate_authority::load(cfg.tls.ca_cert, cfg.tls.ca_key);
        if (!ca) return make_error("tls: " + ca.message());
        int cache_size = cfg.tls.cert_cache_size > 0 ? cfg.tls.cert_cache_size : 1000;
        int expiry = cfg.tls.leaf_cert_expiry_hours > 0 ? cfg.tls.leaf_cert_expiry_hours : 72;
        rt.leaves = std::make_shared<tls::leaf_cache>(*ca, static_cast<std::size_t>(cache_size), std::chrono::hours(expiry));
        auto server_ctx = tls::make_server_context(*rt.leaves);
        if (!server_ctx) return make_error("tls: " + server_ctx.message());
        shared->server_tls = std::make_shared<asio::ssl::context>(server_ctx->release());
    } else if (!cfg.tls.ca_cert.empty() || !cfg.tls.ca_key.empty()) {
        log::warn("tls.ca_cert and tls.ca_key are ignored when tls.mode=sni-only");
    }
    auto client_ctx = tls::make_client_context(cfg.proxy.upstream_ca_file);
    if (!client_ctx) return make_error("proxy.upstream_ca_file: " + client_ctx.message());
    shared->client_tls = std::make_shared<asio::ssl::context>(client_ctx->release());

    // Request metrics (and OTLP log records) are derived from the audit records, so they always
    // agree with the log.
    auto observers = make_audit_observers(rt);
    if (!observers) return observers.err();
    auto sink = audit::sink::open(cfg.log.audit_path, std::move(*observers));
    if (!sink) return sink.err();
    shared->audit = std::move(*sink);
    rt.shared = std::move(shared);
    return rt;
}

// One thread's world. Everything here is touched only from its own thread once running.
struct worker {
    // Before `ioc`, so it outlives the coroutine frames the io_context destroys (their
    // connections unregister from it, their exchanges ask it whether they were cut).
    net::live_connections connections;
    asio::io_context ioc{1};
    // Keeps the loop running once the drain closed its listeners and it has nothing else to do:
    // the drain still posts to it, and only ioc.stop() ends it.
    asio::executor_work_guard<asio::io_context::executor_type> keep_running{ioc.get_executor()};
    std::unique_ptr<net::resolver> resolver;
    std::unique_ptr<net::dialer> dialer;
    std::unique_ptr<upstream_proxy::router> router;  // after `dialer`, which it borrows
    std::unique_ptr<http::upstream_pool> pool;
    std::unique_ptr<h2::client_pool> h2_pool;  // after `pool`, which it borrows
    runtime::worker_state state;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::thread thread;
};

enum class listener_kind { http, https, tunnel };

struct listener_spec {
    listener_kind kind;
    std::string address;
    const char* start_msg;
};

using handler_fn = asio::awaitable<void> (*)(tcp::socket, tcp::endpoint, std::shared_ptr<const runtime::shared_state>,
                                             runtime::worker_state*);

handler_fn handler_for(listener_kind kind) {
    switch (kind) {
        case listener_kind::http: return &intercept::serve_http_listener;
        case listener_kind::https: return &intercept::serve_https_listener;
        case listener_kind::tunnel: return &tunnel::serve_tunnel_listener;
    }
    return nullptr;
}

std::string endpoint_text(const tcp::endpoint& ep) {
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// Binds `spec` on every worker, on one port claimed first (port 0 = a free one).
result<tcp::endpoint> bind_everywhere(std::vector<std::unique_ptr<worker>>& workers, const listener_spec& spec,
                                    bool transparent) {
    auto ep = net::parse_listen_address(spec.address);
    if (!ep) return make_error("listen " + spec.address + ": " + ep.message());
    auto claimed = net::claim_listen_port(*ep, spec.address);
    if (!claimed) return claimed.err();
    const tcp::endpoint bound = *claimed;
    for (auto& w : workers) {
        auto acc = net::open_acceptor(w->ioc.get_executor(), bound, spec.address, transparent);
        if (!acc) return acc.err();
        w->acceptors.push_back(std::make_unique<tcp::acceptor>(std::move(*acc)));
    }
    return bound;
}

const char* listener_name(listener_kind kind) {
    switch (kind) {
        case listener_kind::http: return "http";
        case listener_kind::https: return "https";
        case listener_kind::tunnel: return "tunnel";
    }
    return "proxy";
}

// The admin servers report "ip:port"; the loop guard wants the endpoint.
void guard_admin_listener(net::loop_guard& loops, const char* name, const std::string& address) {
    if (auto ep = net::parse_listen_address(address)) loops.add(name, *ep);
}

metrics::listener metrics_label(listener_kind kind) {
    switch (kind) {
        case listener_kind::http: return metrics::listener::http;
        case listener_kind::https: return metrics::listener::https;
        case listener_kind::tunnel: return metrics::listener::tunnel;
    }
    return metrics::listener::http;
}

// Counts the connection as open for exactly as long as its handler runs (the guard also runs when
// shutdown destroys the frame without resuming it).
asio::awaitable<void> counted_session(handler_fn handler, listener_kind kind, tcp::socket s, tcp::endpoint peer,
                                      std::shared_ptr<const runtime::shared_state> shared, runtime::worker_state* state) {
    struct open_guard {
        metrics::listener which;
        explicit open_guard(metrics::listener l) : which(l) { metrics::connection_opened(l); }
        ~open_guard() { metrics::connection_closed(which); }
    } guard(metrics_label(kind));
    co_await handler(std::move(s), std::move(peer), std::move(shared), state);
}

std::vector<drain_worker> drain_view(std::vector<std::unique_ptr<worker>>& workers) {
    std::vector<drain_worker> out;
    for (auto& w : workers) out.push_back(drain_worker{&w->ioc, &w->connections, &w->acceptors});
    return out;
}

void start_accepting(worker& w, tcp::acceptor& acc, listener_kind kind, std::shared_ptr<const runtime::shared_state> shared) {
    handler_fn handler = handler_for(kind);
    runtime::worker_state* state = &w.state;
    asio::co_spawn(
        w.ioc,
        net::accept_loop(acc,
                         [handler, kind, shared, state, &w](tcp::socket s, const tcp::endpoint& peer) {
                             asio::co_spawn(w.ioc, counted_session(handler, kind, std::move(s), peer, shared, state),
                                            [](std::exception_ptr e) {
                                 // Last-resort catch: one broken session never takes the process down.
                                 if (!e) return;
                                 try {
                                     std::rethrow_exception(e);
                                 } catch (const std::exception& ex) {
                                     log::error("session failed", {{"error", ex.what()}});
                                 } catch (...) {
                                     log::error("session failed", {{"error", "unknown exception"}});
                                 }
                             });
                         }),
        asio::detached);
}

// POST /v1/reload: the same file, env overrides, defaults, validation and a new pipeline (with the
// runtime egress overlay), all before anything changes; then one atomic swap (requests in flight
// keep their snapshot). The pipeline and the request-body limits change; listeners, DNS, TLS, deny
// CIDRs, timeouts and the log level stay as started, as in Go (Go also keeps the start-up body limits).
result<void> reload_policy(const std::string& path, egress::controller& egress) {
    auto cfg = config::load_file(path);
    if (!cfg) return cfg.err();
    if (auto r = refuse_unsupported(*cfg); !r) return r.err();
    return egress.reload(std::move(*cfg));
}

// metrics.listen and management.listen: their own thread each, never in the proxy's way.
struct admin_servers {
    std::unique_ptr<admin::server> metrics, management;
    void stop() {
        if (management) management->stop();
        if (metrics) metrics->stop();
    }
};

result<admin_servers> start_admin(const config::config& cfg, const proxy_runtime& rt) {
    admin_servers out;
    auto m = admin::server::start(cfg.metrics.listen, admin::metrics_routes());
    if (!m) return make_error("metrics.listen: " + m.message());
    out.metrics = std::move(*m);
    // Go logs the configured address here; bound_addr says where port 0 ended up.
    log::info("metrics server starting", {{"addr", cfg.metrics.listen}, {"bound_addr", out.metrics->address()}});
    if (cfg.management.listen.empty()) return out;
    const char* token = std::getenv(cfg.management.api_key_env.c_str());  // non-empty: validated
    auto egress = std::make_shared<egress::controller>(cfg, rt.egress, cfg.management.state_path, rt.shared->policies,
                                                       make_request_policy);
    auto reload = [path = cfg.source, egress] { return reload_policy(path, *egress); };
    auto mg = admin::server::start(cfg.management.listen,
                                   admin::management_routes(token ? token : "", reload, egress));
    if (!mg) {
        out.stop();
        return make_error("management.listen: " + mg.message());
    }
    out.management = std::move(*mg);
    log::info("management server starting", {{"addr", out.management->address()}});
    return out;
}

unsigned worker_count() {
    unsigned n = std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    return std::min(n, 64u);
}

}  // namespace

namespace {

result<void> check_listen_addresses(const config::config& cfg) {
    for (const auto& addr : cfg.proxy.http_listens)
        if (auto ep = net::parse_listen_address(addr); !ep) return make_error("proxy.http_listen: " + ep.message());
    if (auto ep = net::parse_listen_address(cfg.proxy.https_listen); !ep)
        return make_error("proxy.https_listen: " + ep.message());
    if (!cfg.proxy.tunnel_listen.empty())
        if (auto ep = net::parse_listen_address(cfg.proxy.tunnel_listen); !ep)
            return make_error("proxy.tunnel_listen: " + ep.message());
    if (auto ep = net::parse_listen_address(cfg.metrics.listen); !ep) return make_error("metrics.listen: " + ep.message());
    if (!cfg.management.listen.empty())
        if (auto ep = net::parse_listen_address(cfg.management.listen); !ep)
            return make_error("management.listen: " + ep.message());
    if (cfg.dns.enabled)
        if (auto ep = net::parse_listen_address(cfg.dns.listen); !ep) return make_error("dns.listen: " + ep.message());
    return ok();
}

// What the workers and the DNS server check when they are made, without binding anything.
result<void> check_resolvers(const config::config& cfg) {
    asio::io_context ioc{1};
    auto res = net::resolver::create(ioc.get_executor(), cfg.dns.upstream_resolver);
    if (!res) return make_error("dns.upstream_resolver: " + res.message());
    if (cfg.dns.enabled) {
        auto pol = dns::make_policy(cfg.dns);
        if (!pol) return pol.err();
    }
    return ok();
}

}  // namespace

// Every start-up check that needs no port, so that "config OK" means the proxy starts (unless a
// port is taken).
result<void> check(const config::config& cfg) {
    auto rt = build_runtime(cfg);
    if (!rt) return rt.err();
    if (auto r = check_listen_addresses(cfg); !r) return r;
    return check_resolvers(cfg);
}

namespace {

int startup_failed(const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 1;
}

// One worker per core: its io_context, resolver, dialer (deny CIDRs, loop guard) and pools.
result<std::vector<std::unique_ptr<worker>>> make_workers(const config::config& cfg, const proxy_runtime& rt,
                                                         net::loop_guard& loops) {
    const auto connect_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg.proxy.upstream_connect_timeout);
    http::upstream_timeouts up_timeouts;
    up_timeouts.idle = cfg.proxy.upstream_idle_timeout;
    std::vector<std::unique_ptr<worker>> workers;
    for (unsigned i = 0; i < worker_count(); ++i) {
        auto w = std::make_unique<worker>();
        auto res = net::resolver::create(w->ioc.get_executor(), cfg.dns.upstream_resolver);
        if (!res) return make_error("dns.upstream_resolver: " + res.message());
        w->resolver = std::move(*res);
        w->dialer = std::make_unique<net::dialer>(*w->resolver, rt.deny, connect_timeout, &loops);
        w->router = std::make_unique<upstream_proxy::router>(*w->dialer, rt.chain, connect_timeout,
                                                                 rt.shared->client_tls.get());
        w->pool = std::make_unique<http::upstream_pool>(*w->router, *rt.shared->client_tls, up_timeouts);
        w->h2_pool = std::make_unique<h2::client_pool>(w->ioc.get_executor(), *w->pool, up_timeouts.idle);
        w->state = runtime::worker_state{w->dialer.get(), w->router.get(), w->pool.get(), w->h2_pool.get(),
                                         &w->connections};
        workers.push_back(std::move(w));
    }
    return workers;
}

std::vector<listener_spec> listener_specs(const config::config& cfg) {
    std::vector<listener_spec> specs;
    for (const auto& a : cfg.proxy.http_listens) specs.push_back({listener_kind::http, a, "http proxy starting"});
    specs.push_back({listener_kind::https, cfg.proxy.https_listen,
                     cfg.tls.mode == "sni-only" ? "https proxy starting (sni-only)" : "https proxy starting"});
    if (!cfg.proxy.tunnel_listen.empty())
        specs.push_back({listener_kind::tunnel, cfg.proxy.tunnel_listen, "tunnel proxy starting"});
    return specs;
}

// The DNS server runs on the first worker's io_context (one thread serves far more queries than a
// sandbox makes; no shared state).
result<std::unique_ptr<dns::server>> start_dns(const config::config& cfg, worker& first, net::loop_guard& loops) {
    auto started = dns::server::start(first.ioc, cfg.dns);
    if (!started) return started.err();
    loops.add("dns", (*started)->tcp_endpoint());
    for (const auto& w : (*started)->warnings()) log::warn("dns record ignored", {{"why", w}});
    log::info("dns server starting", {{"addr", (*started)->address()}});
    return std::move(*started);
}

// Where the banner tells the user to point a client.
struct bound_addresses {
    std::string tunnel;
    std::string http;
};

result<bound_addresses> start_listeners(const config::config& cfg, std::vector<std::unique_ptr<worker>>& workers,
                                        net::loop_guard& loops, const std::shared_ptr<const runtime::shared_state>& shared) {
    bound_addresses out;
    for (const auto& spec : listener_specs(cfg)) {
        std::size_t first_new = workers.front()->acceptors.size();
        const bool transparent = cfg.proxy.transparent && spec.kind != listener_kind::tunnel;
        auto bound = bind_everywhere(workers, spec, transparent);
        if (!bound) return bound.err();
        loops.add(listener_name(spec.kind), *bound);
        for (auto& w : workers) start_accepting(*w, *w->acceptors[first_new], spec.kind, shared);
        const std::string bound_text = endpoint_text(*bound);
        log::info(spec.start_msg, {{"addr", bound_text}});
        if (spec.kind == listener_kind::tunnel) out.tunnel = bound_text;
        if (spec.kind == listener_kind::http && out.http.empty()) out.http = bound_text;
    }
    return out;
}

void log_policy(const config::config& cfg, const proxy_runtime& rt) {
    log::info("transform pipeline", {{"transforms", rt.shared->policies->get()->pipeline->names()}});
    const bool has_policy = rt.shared->policies->get()->pipeline->has_last_stage();
    if (auto mcp_policy = mcp::parse_policy(cfg.mcp.node(), cfg.source); mcp_policy && *mcp_policy)
        log::info("mcp policy enabled", {{"servers", (*mcp_policy)->servers.size()}});
    const YAML::Node& gw = cfg.mcp_gateway.node();
    if (const YAML::Node routes = gw.IsMap() ? gw["routes"] : YAML::Node(); routes.IsSequence() && routes.size() > 0)
        has_policy ? log::info("mcp gateway enabled", {{"routes", routes.size()}})
                   : log::warn("mcp gateway routes apply only to requests that match an mcp server: none is configured");
    boost::json::array cidrs;
    for (const auto& c : rt.deny.prefixes()) cidrs.push_back(boost::json::value(c.text));
    log::info("upstream deny list active", {{"cidrs", cidrs}});
    if (!cfg.dns.upstream_resolver.empty()) log::info("using upstream resolver", {{"addr", cfg.dns.upstream_resolver}});
    // The parents by their redacted URLs: a password never reaches the log.
    if (rt.chain && rt.chain->any())
        log::info("upstream proxy chaining", {{"http_proxy", rt.chain->http() ? rt.chain->http()->display : ""},
                                              {"https_proxy", rt.chain->https() ? rt.chain->https()->display : ""},
                                              {"no_proxy", cfg.proxy.upstream_proxy.no_proxy}});
}

void start_worker_threads(std::vector<std::unique_ptr<worker>>& workers) {
    for (auto& w : workers) {
        w->thread = std::thread([&ioc = w->ioc] {
            // Audit records are written once per event-loop turn; whatever the last turn left is
            // written when the loop returns (shutdown), by the scope's destructor.
            audit::batch_scope batch(ioc);
            ioc.run();
        });
    }
}

// SIGHUP, again and again until shutdown cancels it: secret files and other external state are
// re-read; the config itself is reloaded only through the management API (as in Go).
void watch_sighup(asio::signal_set& hup, const std::shared_ptr<const runtime::shared_state>& shared,
                  std::vector<std::unique_ptr<worker>>& workers) {
    hup.async_wait([&hup, shared, &workers](const boost::system::error_code& ec, int) {
        if (ec) return;
        log::info("SIGHUP received: refreshing secrets; the configuration is reloaded by POST /v1/reload");
        shared->policies->get()->pipeline->refresh();
        // Audit batches last one event-loop turn at most; writing them now as well means a log
        // rotator that signals after moving the file finds every earlier record in it.
        for (auto& w : workers) asio::post(w->ioc, [] { audit::flush_thread_batch(); });
        watch_sighup(hup, shared, workers);
    });
}

// The OTLP exporter sends what the workers left queued within what remains of the shutdown
// budget, but gets at least a second: the records of connections the drain cut at its timeout
// were written last and would otherwise never leave.
std::chrono::steady_clock::time_point otel_flush_deadline(std::chrono::steady_clock::time_point started,
                                                          std::chrono::nanoseconds budget) {
    const auto now = std::chrono::steady_clock::now();
    return std::max(started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(budget),
                    now + std::chrono::seconds(1));
}

}  // namespace

int run(const config::config& cfg, const run_options& opts) {
    log::level lvl;
    if (log::parse_level(cfg.log.level, lvl)) log::set_level(lvl);
    warn_unsupported(cfg);
    auto rt = build_runtime(cfg);
    if (!rt) return startup_failed(rt.message());
    auto shared = rt->shared;
    // Installed before any listener exists, so a SIGTERM right after "ready" is a clean shutdown
    // (exit 0), never the default action.
    asio::io_context signals_ctx{1};
    asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
    asio::signal_set hup(signals_ctx, SIGHUP);

    // Every listener of ours, so no dial connects back to one (filled below, before any worker
    // thread starts; declared before `workers`, whose dialers point at it, so it outlives them).
    net::loop_guard loops;
    auto made = make_workers(cfg, *rt, loops);
    if (!made) return startup_failed(made.message());
    std::vector<std::unique_ptr<worker>> workers = std::move(*made);
    log::info("iron-proxy starting", {{"version", IRON_VERSION}, {"config", cfg.source}, {"workers", workers.size()}});
    // Declared after `workers`, so it is destroyed first.
    std::unique_ptr<dns::server> dns_server;
    if (cfg.dns.enabled) {
        auto started = start_dns(cfg, *workers.front(), loops);
        if (!started) return startup_failed(started.message());
        dns_server = std::move(*started);
    }
    auto addresses = start_listeners(cfg, workers, loops, shared);
    if (!addresses) return startup_failed(addresses.message());
    auto admin_started = start_admin(cfg, *rt);
    if (!admin_started) return startup_failed(admin_started.message());
    admin_servers admin = std::move(*admin_started);
    guard_admin_listener(loops, "metrics", admin.metrics->address());
    if (admin.management) guard_admin_listener(loops, "management", admin.management->address());
    if (rt->leaves) {
        metrics::set_gauge("iron_proxy_leaf_cert_cache_size", "MITM leaf certificates cached now.",
                           [leaves = rt->leaves] { return static_cast<double>(leaves->size()); });
    }
    log_policy(cfg, *rt);

    if (rt->otel) rt->otel->start();  // before the workers: it must be draining its queue
    start_worker_threads(workers);
    metrics::set_ready(true);
    notify_service_manager("READY=1");  // every listener is listening and its accept loop runs
    log::info("iron-proxy ready", {{"audit", cfg.log.audit_path.empty() ? "stderr" : cfg.log.audit_path}});
    if (opts.embedded_default) print_banner(opts.state_dir, addresses->tunnel, addresses->http);

    // The main thread only waits for signals (their handlers were installed before start-up).
    watch_sighup(hup, shared, workers);
    auto shutdown_started = std::chrono::steady_clock::now();
    signals.async_wait([&](const boost::system::error_code&, int sig) {
        shutdown_started = std::chrono::steady_clock::now();
        metrics::set_ready(false);  // /readyz: take this instance out of rotation first
        notify_service_manager("STOPPING=1");
        log::info("shutting down",
                  {{"signal", sig}, {"shutdown_timeout", config::format_go_duration(cfg.proxy.shutdown_timeout)}});
        hup.cancel();
    });
    signals_ctx.run();
    const drain_result drained = drain(drain_view(workers), signals_ctx, signals, cfg.proxy.shutdown_timeout);
    // The DNS server answered throughout the drain: a client that looks a name up meanwhile gets
    // a quick "connection refused" from the closed listeners, not a resolver timeout.
    if (dns_server) dns_server->stop();
    transforms::grpcsvc::cancel_calls_in_flight(std::chrono::seconds(1));  // grpc transform calls still out
    for (auto& w : workers) w->ioc.stop();
    for (auto& w : workers) w->thread.join();  // each writes its last audit batch as its loop returns
    if (rt->otel) rt->otel->shutdown(otel_flush_deadline(shutdown_started, cfg.proxy.shutdown_timeout));
    admin.stop();  // last: /readyz answers 503 while the proxy drains
    metrics::clear_gauges();
    log::info("shutdown complete", {{"cut_connections", drained.cut}});
    // A second signal means "now": the exit status says the shutdown was not graceful, the way a
    // shell reports a process the signal killed. A drain that hit its timeout still exits 0: the
    // stop was the one asked for, and what it cut is in the audit log.
    return drained.second_signal ? 128 + drained.second_signal : 0;
}

}  // namespace iron::app
