"""The management API in standalone mode (as Go; README.md, "Metrics and management"): Bearer auth
before anything else, POST /v1/reload re-reading the -config file, 422 with nothing swapped,
405 + Allow, and the managed-mode routes answering 404."""
import json

import pytest

from harness import clients, yamlgen
from harness.proxy import ProxyProcess, ProxyStartError

TOKEN = "e2e-management-token"


@pytest.fixture
def managed(proxy_factory):
    """A proxy with the management API on, allowing only allowed.test; returns (proxy, config)."""
    cfg = proxy_factory.config(domains=["allowed.test"],
                               extra={"management": {"listen": "127.0.0.1:0"}})
    p = proxy_factory.start(config=cfg, env={"IRON_MANAGEMENT_API_KEY": TOKEN})
    return p, cfg


def call(p, path, *, method="POST", token=TOKEN, auth=None):
    headers = []
    if auth is not None:
        headers.append(f"Authorization: {auth}")
    elif token is not None:
        headers.append(f"Authorization: Bearer {token}")
    return clients.curl(p.management_url + path, method=method, headers=headers, extra=["-i"])


def body_json(r):
    head, _, body = r.body.partition(b"\r\n\r\n")
    assert body.endswith(b"}\n"), body  # one JSON object and a newline
    return head.decode(), json.loads(body)


def via_proxy(p, host, port):
    return clients.curl(f"http://{host}:{port}/echo", proxy="http://127.0.0.1:%d" % p.http_port)


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "bearer " + TOKEN, "Bearer " + TOKEN + "x", "Basic x"])
def test_unauthorized(managed, auth):
    p, _ = managed
    r = call(p, "/v1/reload", token=None, auth=auth)
    assert r.http_code == 401, r
    head, obj = body_json(r)
    assert obj == {"error": "unauthorized"}
    assert "application/json" in head.lower()
    # Auth comes before the method check.
    assert call(p, "/v1/reload", method="GET", token=None, auth=auth).http_code == 401


def test_wrong_methods_and_managed_routes(managed):
    p, _ = managed
    r = call(p, "/v1/reload", method="GET")
    assert r.http_code == 405, r
    head, obj = body_json(r)
    assert obj == {"error": "method not allowed"} and "\r\nAllow: POST\r\n" in head
    r = call(p, "/v1/status", method="POST")
    head, obj = body_json(r)
    assert r.http_code == 405 and "\r\nAllow: GET\r\n" in head
    r = call(p, "/v1/status", method="GET")
    assert r.http_code == 404 and body_json(r)[1] == {"error": "status is unavailable in standalone mode"}
    r = call(p, "/v1/sync", method="POST")
    assert r.http_code == 404 and body_json(r)[1] == {"error": "sync is unavailable in standalone mode"}
    r = call(p, "/v1/other", method="GET")
    assert r.http_code == 404 and r.body.endswith(b"\r\n\r\n404 page not found\n"), r


def test_reload_changes_the_allowlist(managed, http_upstream):
    p, cfg = managed
    assert via_proxy(p, "other.test", http_upstream.port).http_code == 403
    cfg["transforms"][0]["config"]["domains"] = ["allowed.test", "other.test"]
    p.config_path.write_text(yamlgen.dump(cfg))
    r = call(p, "/v1/reload")
    assert r.http_code == 200, r
    assert body_json(r)[1] == {"status": "ok"}
    assert via_proxy(p, "other.test", http_upstream.port).http_code == 200
    assert any(rec.get("msg") == "configuration reloaded" for rec in p.log_records())
    r = clients.curl(p.metrics_url + "/metrics")
    assert b'iron_proxy_config_reloads_total{result="ok"} 1\n' in r.body


@pytest.mark.parametrize("text, needle", [
    ("transforms: [unclosed\n", "yaml"),
    ("dns:\n  enabled: false\nbogus_key: 1\n", "bogus_key"),
])
def test_invalid_config_is_422_and_nothing_changes(managed, http_upstream, text, needle):
    p, cfg = managed
    good = p.config_path.read_text()
    p.config_path.write_text(text)
    r = call(p, "/v1/reload")
    assert r.http_code == 422, r
    _, obj = body_json(r)
    assert needle in obj["error"].lower() or needle in obj["error"], obj
    # The old pipeline keeps working.
    assert via_proxy(p, "allowed.test", http_upstream.port).http_code == 200
    assert via_proxy(p, "other.test", http_upstream.port).http_code == 403
    p.config_path.write_text(good)
    assert call(p, "/v1/reload").http_code == 200
    assert p.alive()


def test_management_without_config_file_is_refused(iron_binary, proxy_factory, tmp_path):
    env = {"IRON_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path / "home"),
           "IRON_MANAGEMENT_LISTEN": "127.0.0.1:0", "IRON_MANAGEMENT_API_KEY": TOKEN}
    p = ProxyProcess(proxy_factory.bed.workdir, None, args=[], env=env, name="nocfg")
    proxy_factory.started.append(p)
    with pytest.raises(ProxyStartError) as e:
        p.start()
    assert ("management.listen requires --config in standalone mode; "
            "/v1/reload has no file to re-read") in str(e.value)


def test_reload_applies_new_body_limits(proxy_factory, http_upstream):
    """Unlike Go (which keeps the start-up limits), a reload applies the new max_request_body_bytes."""
    transforms = [{"name": "allowlist", "config": {"domains": ["allowed.test"]}},
                  {"name": "body_capture", "config": {"rules": [{"host": "allowed.test"}]}}]
    cfg = proxy_factory.config(transforms=transforms, proxy_extra={"max_request_body_bytes": 100},
                               extra={"management": {"listen": "127.0.0.1:0"}})
    p = proxy_factory.start(config=cfg, env={"IRON_MANAGEMENT_API_KEY": TOKEN})
    url = f"http://allowed.test:{http_upstream.port}/echo"
    proxy = "http://127.0.0.1:%d" % p.http_port
    assert clients.curl(url, proxy=proxy, data="x" * 1000).http_code == 413
    cfg["proxy"]["max_request_body_bytes"] = 100000
    p.config_path.write_text(yamlgen.dump(cfg))
    assert call(p, "/v1/reload").http_code == 200
    assert clients.curl(url, proxy=proxy, data="x" * 1000).http_code == 200
