"""The MCP tool policy (top-level `mcp:`) against a real MCP server and a real MCP client, both the
official TypeScript SDK (@modelcontextprotocol/sdk, installed by `npm ci` in tests/e2e/mcp/): the
client goes through the proxy as an HTTP forward proxy, the server answers in JSON
(enableJsonResponse) or in server-sent events. tools/list is filtered, unlisted tools and broken
`when` constraints are refused with a JSON-RPC error without reaching the server. Raw JSON-RPC
from Python covers batches, malformed bodies, notifications, ids of every JSON type, a body over
the cap, a denial over HTTP/2, the audit `mcp` group, and the Go proxy's MCP config under -check."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import audit, clients
from harness.h2_client import H2Client
from harness.proxy import run_binary

pytestmark = pytest.mark.timeout(120)

MCP_DIR = Path(__file__).resolve().parent / "mcp"
GO_CONFIGS = Path("/work/shared/reference/go-configs")
NODE = shutil.which("node")

POLICY_TOOLS = [
    {"name": "search_repositories"},
    {"name": "create_issue", "when": [
        {"path": "owner", "equals": "ironsh"},
        {"path": "repo", "in": ["iron-proxy", "tunis-v2"]},
        {"path": "labels.0", "matches": "^(bug|docs)$"},
    ]},
]


def ensure_sdk():
    if NODE is None:
        pytest.skip("node is not installed")
    if not (MCP_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        # The README's test command installs it (scripts/install-deps.sh); do it here otherwise.
        cp = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=MCP_DIR, capture_output=True,
                            text=True, timeout=300)
        assert cp.returncode == 0, cp.stderr


class NodeMCPServer:
    """server.mjs on 127.0.0.1; `received` holds the POST bodies that reached it."""

    def __init__(self, mode):
        ensure_sdk()
        self.proc = subprocess.Popen([NODE, "server.mjs"], cwd=MCP_DIR, env={**os.environ, "MODE": mode},
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self.received = []
        self.headers = []
        first = self.proc.stdout.readline()
        assert first, "the MCP server did not start"
        self.port = json.loads(first)["port"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            self.headers.append(msg["headers"])
            self.received.append(msg["received"])

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture(params=["json", "sse"])
def mcp_server(request):
    srv = NodeMCPServer(request.param)
    srv.mode = request.param
    yield srv
    srv.stop()


def mcp_section(paths=("/mcp",), tools=POLICY_TOOLS, **extra):
    sec = {"servers": [{"name": "testserver", "rules": [{"host": "127.0.0.1", "paths": list(paths)}],
                        "tools": tools}]}
    sec.update(extra)
    return sec


def start_proxy(proxy_factory, *, mcp=None, **kw):
    return proxy_factory.start(domains=("127.0.0.1", "allowed.test"), deny_cidrs=[],
                               extra={"mcp": mcp if mcp is not None else mcp_section()}, **kw)


def run_client(proxy, server, steps):
    cp = subprocess.run([NODE, "client.mjs"], cwd=MCP_DIR, capture_output=True, text=True, timeout=60,
                        env={**os.environ, "PROXY": f"127.0.0.1:{proxy.http_port}",
                             "URL": f"http://127.0.0.1:{server.port}/mcp", "STEPS": json.dumps(steps)})
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout.strip().splitlines()[-1])["results"]


def post(proxy, upstream_port, body, *, headers=(), path="/mcp"):
    """A raw JSON-RPC POST through the plain listener (absolute-form, as a forward proxy)."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return clients.curl(f"http://127.0.0.1:{upstream_port}{path}", proxy=f"http://127.0.0.1:{proxy.http_port}",
                        method="POST", data=data,
                        headers=["Content-Type: application/json", "Accept: application/json, text/event-stream",
                                 *headers])


def mcp_records(proxy, n):
    recs = proxy.wait_audit(n, predicate=lambda r: "mcp" in r)
    return [r for r in recs if "mcp" in r]


def call(name, args=None, id_=1):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": args or {}}}


# --- the official SDK, both answer modes -----------------------------------------------------------

def test_sdk_client_sees_only_allowed_tools_and_denied_calls_fail(proxy_factory, mcp_server):
    proxy = start_proxy(proxy_factory)
    good_issue = {"owner": "ironsh", "repo": "iron-proxy", "title": "t", "labels": ["bug"]}
    results = run_client(proxy, mcp_server, [
        {"list": True},
        {"call": "search_repositories", "args": {"query": "iron"}},
        {"call": "create_issue", "args": good_issue},
        {"call": "create_issue", "args": {**good_issue, "owner": "evil"}},
        {"call": "create_issue", "args": {**good_issue, "labels": ["wontfix"]}},
        {"call": "delete_repo", "args": {"repo": "iron-proxy"}},
    ])
    assert results[0] == {"tools": ["search_repositories", "create_issue"]}, results
    assert results[1]["content"][0]["text"] == "searched:iron"
    assert results[2]["content"][0]["text"] == "created:ironsh/iron-proxy:t"
    for denied in results[3:]:
        assert "blocked by iron-proxy policy" in denied.get("error", ""), denied
        assert denied["code"] == -32001
    # No denied call reached the server.
    calls = [json.loads(b) for b in mcp_server.received if '"tools/call"' in b]
    assert [c["params"]["name"] for c in calls] == ["search_repositories", "create_issue"]

    recs = mcp_records(proxy, 7)
    listed = next(r for r in recs if any(m.get("method") == "tools/list" and m["direction"] == "request"
                                         for m in r["mcp"].get("messages", [])))
    assert listed["mcp"]["server"] == "testserver"
    [filtered] = [m for m in listed["mcp"]["messages"] if m["direction"] == "response"]
    assert filtered == {"direction": "response", "method": "tools/list", "decision": "filtered", "filtered": 1}
    denials = [r for r in recs if r["audit"]["action"] == "reject"]
    assert len(denials) == 3
    for r in denials:
        assert r["audit"]["status_code"] == 200 and "rejected_by" not in r
        audit.check_shape(r)
    reasons = sorted(m["reason"] for r in denials for m in r["mcp"]["messages"] if m["decision"] == "deny")
    assert reasons == ["argument_constraint", "argument_constraint", "tool_not_allowed"]
    deleted = next(m for r in denials for m in r["mcp"]["messages"] if m.get("tool") == "delete_repo")
    assert deleted["arguments"] == {"repo": "iron-proxy"}


def test_sse_answer_is_filtered_per_event_while_streaming(proxy_factory):
    """An event stream that stays open after its tools/list answer: the filtered event reaches the
    client before the stream ends (the proxy never holds the stream whole)."""
    proxy = start_proxy(proxy_factory)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    release = threading.Event()

    def serve():
        conn, _ = srv.accept()
        with conn:
            clients.read_head(conn)
            tools = {"tools": [{"name": "delete_repo"}, {"name": "search_repositories"}]}
            event = "event: message\r\nid: 7\r\ndata: " + json.dumps({"jsonrpc": "2.0", "id": "L1", "result": tools})
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in (": keepalive\n\n", event[:30], event[30:] + "\r\n\r\n"):
                data = piece.encode()
                conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                time.sleep(0.05)
            release.wait(10)
            conn.sendall(b"0\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    s = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    body = json.dumps({"jsonrpc": "2.0", "id": "L1", "method": "tools/list"}).encode()
    s.sendall(b"POST http://127.0.0.1:%d/mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (port, port, len(body), body))
    got = b""
    deadline = time.monotonic() + 10
    while b"search_repositories" not in got and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    assert b"search_repositories" in got, got  # arrived while the stream is still open
    assert b"delete_repo" not in got
    assert b"id: 7" in got and b": keepalive" in got
    release.set()
    t.join(5)
    s.close()
    srv.close()


# --- raw JSON-RPC ----------------------------------------------------------------------------------

@pytest.fixture
def json_server():
    srv = NodeMCPServer("json")
    yield srv
    srv.stop()


def test_batch_with_one_denied_call_is_denied_whole(proxy_factory, json_server):
    proxy = start_proxy(proxy_factory)
    batch = [call("search_repositories", {"query": "a"}, 1), call("delete_repo", {"repo": "x"}, "two"),
             {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    r = post(proxy, json_server.port, batch)
    assert r.http_code == 200, r
    assert r.json() == [
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "blocked by iron-proxy policy"}},
        {"jsonrpc": "2.0", "id": "two", "error": {"code": -32001, "message": "blocked by iron-proxy policy"}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "blocked by iron-proxy policy"}},
    ]
    assert json_server.received == []
    [rec] = mcp_records(proxy, 1)
    assert [m["decision"] for m in rec["mcp"]["messages"]] == ["allow", "deny", "allow"]
    assert rec["mcp"]["messages"][2]["method"] == "notifications/initialized"


@pytest.mark.parametrize("id_", [0, -7, 3.5, 12345678901234, "x", "", None])
def test_denial_echoes_the_id_as_sent(proxy_factory, json_server, id_):
    proxy = start_proxy(proxy_factory, mcp=mcp_section(error={"code": -32099, "message": "no way"}))
    r = post(proxy, json_server.port, call("delete_repo", {"repo": "x"}, id_))
    assert r.http_code == 200
    assert (r.info.get("content_type") or "").startswith("application/json")
    assert r.json() == {"jsonrpc": "2.0", "id": id_, "error": {"code": -32099, "message": "no way"}}
    assert json_server.received == []


@pytest.mark.parametrize("body", ['{"jsonrpc":"2.0","id":1,"method":"tools/call"', "[]", "42", '"x"',
                                  '[{"jsonrpc":"2.0","id":1,"method":"tools/list"}, 5]',
                                  '{"jsonrpc":"2.0","id":1,"method":7}', '{"jsonrpc":"2.0","id":{},"method":"x"}',
                                  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}', ""])
def test_malformed_jsonrpc_is_denied(proxy_factory, json_server, body):
    proxy = start_proxy(proxy_factory)
    r = post(proxy, json_server.port, body)
    assert r.http_code == 200, r
    answer = r.json()
    first = answer[0] if isinstance(answer, list) else answer
    assert first["error"]["code"] == -32001
    assert json_server.received == []
    [rec] = mcp_records(proxy, 1)
    assert any(m.get("reason") == "malformed_jsonrpc" for m in rec["mcp"]["messages"])


def test_content_type_does_not_bypass_the_policy(proxy_factory, json_server):
    """A server may ignore Content-Type: the policy reads every POST to a matched server."""
    proxy = start_proxy(proxy_factory)
    r = clients.curl(f"http://127.0.0.1:{json_server.port}/mcp", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     method="POST", data=json.dumps(call("delete_repo", {"repo": "x"})),
                     headers=["Content-Type: text/plain", "Accept: application/json, text/event-stream"])
    assert r.http_code == 200 and r.json()["error"]["code"] == -32001
    assert json_server.received == []


def test_when_clauses_dotted_paths_and_array_indexes(proxy_factory, json_server):
    tools = [{"name": "create_issue", "when": [
        {"path": "meta.owner.login", "equals": "ironsh"},
        {"path": "labels.1", "in": ["docs", 5, True]},
        {"path": "title", "matches": "^safe-"},
    ]}]
    proxy = start_proxy(proxy_factory, mcp=mcp_section(tools=tools))
    ok = {"meta": {"owner": {"login": "ironsh"}}, "labels": ["x", "docs"], "title": "safe-one",
          "owner": "o", "repo": "r"}
    cases = [
        (ok, True),
        ({**ok, "labels": ["x", 5]}, True),          # numbers compare as numbers
        ({**ok, "labels": ["x", 5.0]}, True),
        ({**ok, "labels": ["x", "5"]}, False),       # ... and a string is not a number
        ({**ok, "labels": ["x", True]}, True),
        ({**ok, "labels": ["docs"]}, False),         # index out of range
        ({**ok, "meta": {"owner": "ironsh"}}, False),
        ({**ok, "title": "unsafe-safe-"}, False),
        ({**ok, "title": 7}, False),                 # matches only strings
        ({**ok, "title": "safe-" + "x" * 5000}, False),  # past the matched-length bound
    ]
    for i, (args, allowed) in enumerate(cases):
        r = post(proxy, json_server.port, call("create_issue", args, i))
        assert r.http_code == 200, r
        denied = "error" in r.json() and r.json()["error"]["code"] == -32001
        assert denied != allowed, (i, args, r.json())


def test_oversize_body(proxy_factory, json_server):
    big = call("search_repositories", {"query": "q" * 5000})
    proxy = start_proxy(proxy_factory, proxy_extra={"max_request_body_bytes": 1024})
    r = post(proxy, json_server.port, big)
    assert r.http_code == 413, r  # the proxy's body rule, before any stage reads it
    fwd = start_proxy(proxy_factory, proxy_extra={"max_request_body_bytes": 1024, "oversize_body": "forward"})
    r = post(fwd, json_server.port, big)
    assert r.http_code == 200 and r.json()["error"]["code"] == -32001, r
    [rec] = mcp_records(fwd, 1)
    assert rec["mcp"]["messages"] == [{"direction": "request", "decision": "deny", "reason": "oversize_body"}]
    assert json_server.received == []


def test_other_hosts_and_methods_are_not_inspected(proxy_factory, json_server, http_upstream):
    proxy = start_proxy(proxy_factory)
    # Not a matched server: opaque JSON like any other body.
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo", method="POST",
                     data=json.dumps(call("delete_repo")), headers=[f"Host: allowed.test:{http_upstream.port}"])
    assert r.http_code == 200 and "delete_repo" in r.json()["body"]
    # Other methods (here DELETE, which ends a session) pass, recorded with no messages.
    g = clients.curl(f"http://127.0.0.1:{json_server.port}/mcp", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     method="DELETE")
    assert g.http_code in (200, 405), g
    recs = mcp_records(proxy, 1)
    assert recs[0]["mcp"] == {"server": "testserver"}


def test_tools_list_asks_for_an_unencoded_answer(proxy_factory, json_server):
    proxy = start_proxy(proxy_factory)
    r = post(proxy, json_server.port, {"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
             headers=["Accept-Encoding: gzip"])
    assert r.http_code == 200
    assert [t["name"] for t in r.json()["result"]["tools"]] == ["search_repositories", "create_issue"]
    assert "accept-encoding" not in json_server.headers[-1]


def test_denial_over_http2(proxy_factory, bed, upstream_factory):
    origin = upstream_factory(tls=True)
    mcp = {"servers": [{"name": "h2server", "rules": [{"host": "allowed.test", "paths": ["/echo/mcp"]}],
                        "tools": [{"name": "search_repositories"}]}]}
    proxy = start_proxy(proxy_factory, mcp=mcp)
    with H2Client.connect(("127.0.0.1", proxy.https_port), "allowed.test", bed.ca_cert) as c:
        auth = f"allowed.test:{origin.port}"
        hdrs = [("content-type", "application/json")]
        denied = c.request("POST", "/echo/mcp", auth, hdrs, body=json.dumps(call("delete_repo", id_=5)).encode())
        allowed = c.request("POST", "/echo/mcp", auth, hdrs, body=json.dumps(call("search_repositories")).encode())
        d, a = c.wait(denied), c.wait(allowed)
    assert d.status == 200 and json.loads(d.body)["error"]["code"] == -32001 and json.loads(d.body)["id"] == 5
    assert a.status == 200 and "search_repositories" in json.loads(a.body)["body"]
    assert len(origin.requests_for("/echo/mcp")) == 1
    recs = mcp_records(proxy, 2)
    assert sorted(r["audit"]["action"] for r in recs) == ["allow", "reject"]


def test_config_errors(bed, tmp_path):
    def check(mcp_yaml):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"dns:\n  enabled: false\ntls:\n  ca_cert: {bed.ca_cert}\n  ca_key: {bed.ca_key}\nmcp:\n{mcp_yaml}")
        return run_binary(["-check", "-config", str(cfg)])
    base = '  servers:\n    - name: s\n      rules: [{host: "x.test"}]\n'
    assert check(base + "      tools: [{name: a}]\n").returncode == 0
    for bad, msg in [
        (base + "      tools: [{name: a, whn: []}]\n", 'unknown key "whn"'),
        (base + "      tools: [{name: a}, {name: a}]\n", 'duplicate tool name "a"'),
        (base + "      tools: [{name: a, when: [{path: x, equals: 1, in: [1]}]}]\n", "exactly one of equals"),
        (base + "      tools: [{name: a, when: [{path: x, matches: '('}]}]\n", "invalid matches regex"),
        (base + "      tools: [{name: a, when: [{path: x, matches: '^(a+)+$'}]}]\n", "repeated group"),
        ('  servers:\n    - name: s\n      tools: []\n', "at least one rule is required"),
        (base + '    - name: s\n      rules: [{host: "y"}]\n', 'duplicate server name "s"'),
    ]:
        cp = check(bad)
        assert cp.returncode != 0 and msg in cp.stderr + cp.stdout, (bad, cp.stderr)


@pytest.mark.skipif(not GO_CONFIGS.is_dir(), reason="the Go proxy's configs are not on this machine")
def test_go_mcp_config_passes_check(bed, tmp_path):
    (tmp_path / "tmp").mkdir()
    shutil.copy(bed.ca_cert, tmp_path / "tmp" / "ca.crt")
    shutil.copy(bed.ca_key, tmp_path / "tmp" / "ca.key")
    cp = run_binary(["-check", "-config", str(GO_CONFIGS / "integration_test__testdata__mcp_pipeline.yaml")],
                    cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr


def test_tools_list_filtered_for_an_http2_client(proxy_factory, mcp_server, tmp_path):
    """h2c with prior knowledge on the plain listener (nghttp): the same filters run for an
    HTTP/2 client, whichever way the server answers."""
    if shutil.which("nghttp") is None:
        pytest.skip("nghttp is not installed")
    proxy = start_proxy(proxy_factory)
    body = tmp_path / "list.json"
    body.write_text(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}))
    cp = subprocess.run(["nghttp", "-t", "20", "-d", str(body), "-H", f":authority: 127.0.0.1:{mcp_server.port}",
                         "-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream",
                         f"http://127.0.0.1:{proxy.http_port}/mcp"],
                        capture_output=True, text=True, timeout=40, env=clients.clean_env())
    assert cp.returncode == 0, cp.stderr
    assert "search_repositories" in cp.stdout and "create_issue" in cp.stdout, cp.stdout
    assert "delete_repo" not in cp.stdout
    [rec] = [r for r in mcp_records(proxy, 1) if r["audit"]["method"] == "POST"]
    assert rec["mcp"]["messages"][-1]["decision"] == "filtered"


def test_mcp_group_in_the_otlp_export(proxy_factory, json_server):
    from harness.otlp_collector import HttpCollector
    collector = HttpCollector().start()
    try:
        proxy = start_proxy(proxy_factory, env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
                                                 "OTEL_BLRP_SCHEDULE_DELAY": "50"})
        r = post(proxy, json_server.port, call("delete_repo", {"repo": "x"}, 3))
        assert r.json()["error"]["code"] == -32001
        [rec] = collector.wait_records(lambda rs: len(rs) >= 1)
        [line] = mcp_records(proxy, 1)
        assert rec["attributes"]["mcp"] == line["mcp"]
        assert rec["attributes"]["mcp"]["messages"][0]["reason"] == "tool_not_allowed"
        assert "rejected_by" not in rec["attributes"]
    finally:
        collector.stop()
