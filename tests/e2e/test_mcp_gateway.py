"""The MCP gateway (top-level `mcp_gateway:`): a real MCP client and a real MCP server, both the
official TypeScript SDK (tests/e2e/mcp/), with the proxy between them. The client names a host that
exists only in the proxy's config (mcp.internal); the gateway route sends its requests, once the
MCP policy let them through, to the operator's server on loopback with credentials injected (a
header through a formatter, a query parameter); the server refuses any request without them. JSON
and SSE answers; a required credential that is missing ends in 502 without contacting the server,
an optional one is skipped; the audit `mcp.gateway` group (and in the OTLP export); the upstream is
exempt from upstream_deny_cidrs yet a workload request to the same host:port is still refused (also
on a client connection whose worker holds a pooled gateway connection); an HTTP/2 client; config
errors under -check; and a canary: the real credential appears in no audit record, log line or
response."""
import http.client
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from harness import clients
from harness.h2_client import H2Client
from harness.proxy import run_binary

pytestmark = pytest.mark.timeout(120)

MCP_DIR = Path(__file__).resolve().parent / "mcp"
NODE = shutil.which("node")
TOKEN = "gw-canary-token-5f1c9e7a"  # the real credentials: must appear nowhere but at the server
API_KEY = "gw-canary-key-77d0b2"
ENV = {"GW_TOKEN": TOKEN, "GW_KEY": API_KEY}
HOST = "mcp.internal"  # the name workloads use; never resolved


def ensure_sdk():
    if NODE is None:
        pytest.skip("node is not installed")
    if not (MCP_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        cp = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=MCP_DIR, capture_output=True,
                            text=True, timeout=300)
        assert cp.returncode == 0, cp.stderr


class GatewayServer:
    """server.mjs on 127.0.0.1, refusing (401) requests without the gateway's credentials."""

    def __init__(self, mode, expect_header=f"authorization:Bearer {TOKEN}", expect_query=f"api_key={API_KEY}"):
        ensure_sdk()
        env = {**os.environ, "MODE": mode}
        if expect_header:
            env["EXPECT_HEADER"] = expect_header
        if expect_query:
            env["EXPECT_QUERY"] = expect_query
        self.proc = subprocess.Popen([NODE, "server.mjs"], cwd=MCP_DIR, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self.seen = []
        first = self.proc.stdout.readline()
        assert first, "the MCP server did not start"
        self.port = json.loads(first)["port"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.seen.append(json.loads(line))

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture(params=["json", "sse"])
def server(request):
    srv = GatewayServer(request.param)
    yield srv
    srv.stop()


@pytest.fixture
def json_server():
    srv = GatewayServer("json")
    yield srv
    srv.stop()


def credentials(token_var="GW_TOKEN", require=None):
    token = {"source": {"type": "env", "var": token_var},
             "inject": {"header": "authorization", "formatter": "Bearer {{ .Value }}"}}
    if require is not None:
        token["require"] = require
    return [token, {"source": {"type": "env", "var": "GW_KEY"}, "inject": {"query_param": "api_key"}}]


def sections(port, creds=None, upstream_path="/mcp"):
    policy = {"servers": [{"name": "internal", "rules": [{"host": HOST, "paths": ["/mcp"]}],
                           "tools": [{"name": "search_repositories"}]}]}
    gateway = {"routes": [{"name": "gw", "rules": [{"host": HOST}],
                           "upstream": f"http://127.0.0.1:{port}{upstream_path}",
                           "credentials": creds if creds is not None else credentials()}]}
    return {"mcp": policy, "mcp_gateway": gateway}


def start_proxy(proxy_factory, port, *, env=ENV, domains=(HOST,), deny_cidrs=("127.0.0.0/8",), **kw):
    extra = kw.pop("extra", None) or sections(port, kw.pop("creds", None))
    return proxy_factory.start(domains=domains, deny_cidrs=list(deny_cidrs), extra=extra,
                               env={**os.environ, **env}, **kw)


def run_client(proxy, steps, url=f"http://{HOST}/mcp"):
    cp = subprocess.run([NODE, "client.mjs"], cwd=MCP_DIR, capture_output=True, text=True, timeout=60,
                        env={**os.environ, "PROXY": f"127.0.0.1:{proxy.http_port}", "URL": url,
                             "STEPS": json.dumps(steps)})
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout.strip().splitlines()[-1])["results"], cp.stdout + cp.stderr


def post(proxy, url, body, headers=()):
    data = body if isinstance(body, str) else json.dumps(body)
    return clients.curl(url, proxy=f"http://127.0.0.1:{proxy.http_port}", method="POST", data=data,
                        headers=["Content-Type: application/json", "Accept: application/json, text/event-stream",
                                 *headers])


def call(name, args=None, id_=1):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": args or {}}}


def assert_no_canary(*texts):
    for text in texts:
        assert TOKEN not in text and API_KEY not in text


# --- the official SDK through a gateway route ----------------------------------------------------

def test_sdk_client_reaches_the_server_through_the_gateway_route(proxy_factory, server):
    proxy = start_proxy(proxy_factory, server.port)
    results, client_out = run_client(proxy, [{"list": True}, {"call": "search_repositories", "args": {"query": "q"}},
                                             {"call": "delete_repo", "args": {"repo": "x"}}])
    assert "connect_error" not in results[0], results
    assert results[0] == {"tools": ["search_repositories"]}, results
    assert results[1]["content"][0]["text"] == "searched:q", results
    assert results[2].get("code") == -32001 or "blocked" in json.dumps(results[2]), results
    # Every request that reached the server carried both credentials, and came to the route's path
    # under the upstream's own Host; the denied call never arrived.
    assert server.seen and all("delete_repo" not in s["received"] for s in server.seen)
    for s in server.seen:
        assert s["headers"]["authorization"] == f"Bearer {TOKEN}", s
        assert s["headers"]["host"] == f"127.0.0.1:{server.port}", s
        assert s["url"].startswith("/mcp?") and f"api_key={API_KEY}" in s["url"], s
    recs = proxy.wait_audit(4, predicate=lambda r: "mcp" in r)
    routed = [r for r in recs if "gateway" in r.get("mcp", {})]
    assert routed, recs
    for r in routed:
        assert r["audit"]["host"] == HOST and r["audit"]["action"] == "allow", r
        assert r["mcp"]["gateway"] == {"route": "gw", "upstream": f"http://127.0.0.1:{server.port}/mcp",
                                       "credentials_injected": ["GW_TOKEN:header:Authorization",
                                                                "GW_KEY:query:api_key"]}, r
    denied = [r for r in recs if r["audit"]["action"] == "reject"]
    assert len(denied) == 1 and "gateway" not in denied[0]["mcp"], denied
    assert_no_canary(proxy.stderr_text(), proxy.stdout_text(), json.dumps(recs), client_out,
                     (proxy.workdir / f"{proxy.name}.audit.jsonl").read_text())


def test_route_query_comes_first_and_the_client_cannot_set_the_credential(proxy_factory, json_server):
    extra = sections(json_server.port, upstream_path="/mcp?v=1")
    proxy = start_proxy(proxy_factory, json_server.port, extra=extra)
    r = post(proxy, f"http://{HOST}/mcp?x=1&api_key=forged", call("search_repositories", {"query": "q"}),
             headers=["Authorization: Bearer forged"])
    assert r.http_code == 200 and "searched:q" in r.text, r
    [seen] = json_server.seen
    assert seen["url"] == f"/mcp?v=1&x=1&api_key={API_KEY}", seen
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_other_paths_of_the_host_are_not_routed(proxy_factory, json_server):
    """The route applies only to requests that matched an MCP server: another path of the same
    host goes where the client said (here: nowhere, the name does not resolve)."""
    proxy = start_proxy(proxy_factory, json_server.port)
    r = post(proxy, f"http://{HOST}/elsewhere", call("search_repositories"))
    assert r.http_code == 502 and json_server.seen == [], r
    [rec] = proxy.wait_audit(1)
    assert "mcp" not in rec and "mcp.internal" in rec["error"], rec


# --- credentials ----------------------------------------------------------------------------------

def test_required_credential_missing_is_a_502_and_the_server_is_not_contacted(proxy_factory, json_server, tmp_path):
    proxy = start_proxy(proxy_factory, json_server.port, creds=credentials("GW_UNSET"))
    dump = tmp_path / "head.txt"
    r = clients.curl(f"http://{HOST}/mcp", proxy=f"http://127.0.0.1:{proxy.http_port}", method="POST",
                     data=json.dumps(call("search_repositories")), headers=["Content-Type: application/json"],
                     extra=["-D", str(dump)])
    assert r.http_code == 502 and json_server.seen == [], r
    assert "mcp gateway" in dump.read_text().lower()
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "error" and rec["audit"]["status_code"] == 502, rec
    assert rec["error"].startswith('gateway credential "GW_UNSET" unavailable'), rec
    assert "gateway" not in rec["mcp"]


def test_optional_credential_missing_is_skipped(proxy_factory, bed):
    srv = GatewayServer("json", expect_header=None)
    try:
        proxy = start_proxy(proxy_factory, srv.port, creds=credentials("GW_UNSET", require=False))
        r = post(proxy, f"http://{HOST}/mcp", call("search_repositories", {"query": "z"}))
        assert r.http_code == 200 and "searched:z" in r.text, r
        [seen] = srv.seen
        assert "authorization" not in seen["headers"]
        [rec] = proxy.wait_audit(1)
        assert rec["mcp"]["gateway"]["credentials_injected"] == ["GW_KEY:query:api_key"], rec
    finally:
        srv.stop()


# --- the upstream is the operator's, not a workload's --------------------------------------------

def test_gateway_upstream_skips_deny_cidrs_but_workloads_cannot_reach_it(proxy_factory, json_server):
    """127.0.0.0/8 is denied: the route's upstream on 127.0.0.1 is still reached, but a workload
    naming 127.0.0.1:<port> is refused — by default deny when the allowlist does not list it, by
    the deny list when it does — also on the same client connection (same worker) right after a
    gateway request left an idle pooled connection to that very address."""
    port = json_server.port
    strict = start_proxy(proxy_factory, port)
    assert post(strict, f"http://127.0.0.1:{port}/mcp", call("search_repositories")).http_code == 403
    listed = start_proxy(proxy_factory, port, domains=(HOST, "127.0.0.1"))
    conn = http.client.HTTPConnection("127.0.0.1", listed.http_port, timeout=10)
    body = json.dumps(call("search_repositories", {"query": "k"}))
    hdrs = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    try:
        conn.request("POST", f"http://{HOST}/mcp", body=body, headers=hdrs)
        first = conn.getresponse()
        assert first.status == 200 and b"searched:k" in first.read()
        conn.request("POST", f"http://127.0.0.1:{port}/mcp", body=body, headers={**hdrs, "Host": f"127.0.0.1:{port}"})
        second = conn.getresponse()
        second.read()
        assert second.status == 502, second.status
    finally:
        conn.close()
    assert len(json_server.seen) == 1, json_server.seen
    recs = listed.wait_audit(2)
    direct = next(r for r in recs if r["audit"]["host"] == f"127.0.0.1:{port}")
    assert "denied by upstream_deny_cidrs" in direct["error"], direct


# --- other clients, other exports -------------------------------------------------------------------

def test_http2_client_through_the_gateway_route(proxy_factory, bed, json_server):
    proxy = start_proxy(proxy_factory, json_server.port)
    with H2Client.connect(("127.0.0.1", proxy.https_port), HOST, bed.ca_cert) as c:
        hdrs = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        sid = c.request("POST", "/mcp", HOST, hdrs, body=json.dumps(call("search_repositories", {"query": "h2"})).encode())
        r = c.wait(sid)
    assert r.status == 200 and "searched:h2" in r.body.decode(), r
    [seen] = json_server.seen
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}" and seen["headers"]["host"] == f"127.0.0.1:{json_server.port}"
    [rec] = proxy.wait_audit(1)
    assert rec["mcp"]["gateway"]["route"] == "gw", rec


def test_gateway_group_in_the_otlp_export(proxy_factory, json_server):
    from harness.otlp_collector import HttpCollector
    collector = HttpCollector().start()
    try:
        proxy = start_proxy(proxy_factory, json_server.port,
                            env={**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
                                 "OTEL_BLRP_SCHEDULE_DELAY": "50"})
        assert post(proxy, f"http://{HOST}/mcp", call("search_repositories", {"query": "o"})).http_code == 200
        [rec] = collector.wait_records(lambda rs: len(rs) >= 1)
        [line] = proxy.wait_audit(1)
        assert rec["attributes"]["mcp"]["gateway"] == line["mcp"]["gateway"]
        assert rec["attributes"]["mcp"]["gateway"]["credentials_injected"] == ["GW_TOKEN:header:Authorization",
                                                                               "GW_KEY:query:api_key"]
        assert_no_canary(json.dumps(rec))
    finally:
        collector.stop()


# --- config ------------------------------------------------------------------------------------------

def check(bed, tmp_path, gateway_yaml, env=None):
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"dns: {{enabled: false}}\n"
                   f"tls: {{ca_cert: {bed.ca_cert}, ca_key: {bed.ca_key}}}\n"
                   f"mcp: {{servers: [{{name: s, rules: [{{host: {HOST}}}], tools: [{{name: t}}]}}]}}\n"
                   f"mcp_gateway: {gateway_yaml}\n")
    cp = run_binary(["-check", "-config", str(cfg)], env={**os.environ, **(env or {})})
    return cp.returncode, cp.stdout + cp.stderr


ROUTE = "{name: r, rules: [{host: mcp.internal}], upstream: 'http://127.0.0.1:9/mcp'"


@pytest.mark.parametrize("routes,needle", [
    ("[{rules: [{host: h}], upstream: 'http://x'}]", "name is required"),
    (f"[{ROUTE}}}, {ROUTE}}}]", 'duplicate route name "r"'),
    ("[{name: r, upstream: 'http://x'}]", "at least one rule is required"),
    ("[{name: r, rules: [{host: h}]}]", "upstream is required"),
    ("[{name: r, rules: [{host: h}], upstream: 'ftp://x'}]", "must use http or https"),
    ("[{name: r, rules: [{host: h}], upstream: 'http://x/#f'}]", "must not include a fragment"),
    ("[{name: r, rules: [{host: h}], upstream: 'http://u:p@x/'}]", "must not include userinfo"),
    (f"[{ROUTE}, credentials: [{{source: {{type: env, var: V}}, inject: {{}}}}]}}]",
     "inject must specify either header or query_param"),
    (f"[{ROUTE}, credentials: [{{source: {{type: env, var: V}}, inject: {{header: A, query_param: b}}}}]}}]",
     "inject cannot specify both header and query_param"),
    (f"[{ROUTE}, credentials: [{{source: {{type: env, var: V}}, inject: {{header: A, formatter: '{{{{ .Token }}}}'}}}}]}}]",
     "only use .Value"),
    (f"[{ROUTE}, credentials: [{{source: {{type: env, var: V}}, inject: {{header: A, formatter: '{{{{ if }}}}'}}}}]}}]",
     "parsing formatter"),
    (f"[{ROUTE}, extra: 1}}]", "extra"),
])
def test_config_errors(bed, tmp_path, routes, needle):
    rc, out = check(bed, tmp_path, f"{{routes: {routes}}}")
    assert rc != 0 and needle in out and "mcp_gateway.routes[" in out, out


def test_valid_gateway_config_passes_check(bed, tmp_path):
    creds = ("[{source: {type: env, var: GW_TOKEN}, inject: {header: authorization, "
             "formatter: 'Basic {{ base64 \"user:\" .Value }}'}, require: false}, "
             "{source: {type: env, var: GW_KEY}, inject: {query_param: key}}]")
    rc, out = check(bed, tmp_path, f"{{routes: [{ROUTE}, credentials: {creds}}}]}}", env=ENV)
    assert rc == 0, out
    assert "not yet supported" not in out


def test_base64_formatter_is_go_templates(proxy_factory, bed):
    """Basic auth through the formatter's base64 function (the Go gateway's FuncMap)."""
    import base64
    want = "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()
    srv = GatewayServer("json", expect_header=f"authorization:{want}", expect_query=None)
    try:
        creds = [{"source": {"type": "env", "var": "GW_TOKEN"},
                  "inject": {"header": "Authorization", "formatter": 'Basic {{ base64 "user:" .Value }}'}}]
        proxy = start_proxy(proxy_factory, srv.port, creds=creds)
        r = post(proxy, f"http://{HOST}/mcp", call("search_repositories", {"query": "b"}))
        assert r.http_code == 200 and "searched:b" in r.text, r
        assert_no_canary(proxy.stderr_text(), r.text)
    finally:
        srv.stop()
