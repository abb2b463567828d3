"""Runtime egress rules and mode on the management API (README.md, "Runtime egress rules"):
GET /v1/egress, POST /v1/egress/rules, DELETE /v1/egress/rules/{id}, PUT /v1/egress/mode, behind
the management bearer key; changes swap the policy atomically, are logged as management events,
survive a restart through management.state_path (0600), and a damaged state file stops start-up.
Also the `iron-proxy egress` CLI against the running proxy."""
import json
import os
import socket
import stat

import pytest

from harness import audit, clients, yamlgen
from harness.proxy import ProxyStartError, run_binary

TOKEN = "e2e-egress-token"
KEY_ENV = {"IRON_MANAGEMENT_API_KEY": TOKEN}


def egress_config(proxy_factory, state_path, **kw):
    extra = {"management": {"listen": "127.0.0.1:0", "state_path": str(state_path)}}
    return proxy_factory.config(domains=["allowed.test"], extra=extra, **kw)


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "egress-state.json"


@pytest.fixture
def managed(proxy_factory, state_path):
    cfg = egress_config(proxy_factory, state_path)
    return proxy_factory.start(config=cfg, env=KEY_ENV)


def api(p, method, path, body=None, *, token=TOKEN):
    headers = [f"Authorization: Bearer {token}"] if token is not None else []
    data = None
    if body is not None:
        headers.append("Content-Type: application/json")
        data = body if isinstance(body, str) else json.dumps(body)
    r = clients.curl(p.management_url + path, method=method, headers=headers, data=data)
    obj = json.loads(r.body) if r.body.strip().startswith(b"{") else None
    return r.http_code, obj


def via_proxy(p, host, port):
    return clients.curl(f"http://{host}:{port}/echo", proxy="http://127.0.0.1:%d" % p.http_port).http_code


def management_events(p, msg):
    return [r for r in p.log_records() if r.get("msg") == msg and r.get("event") == "management"]


def test_add_then_remove_a_host(managed, http_upstream):
    p, port = managed, http_upstream.port
    status, obj = api(p, "GET", "/v1/egress")
    assert status == 200, obj
    assert obj["mode"] == "enforce" and obj["mode_source"] == "config" and obj["allowlist"] is True
    assert obj["rules"] == [{"id": "cfg-1", "source": "config", "host": "allowed.test"}]
    assert via_proxy(p, "other.test", port) == 403

    status, rule = api(p, "POST", "/v1/egress/rules", {"host": "other.test"})
    assert status == 201, rule
    assert rule == {"id": "rt-1", "source": "runtime", "host": "other.test"}
    assert via_proxy(p, "other.test", port) == 200
    assert via_proxy(p, "allowed.test", port) == 200
    # The same rule again is answered with the existing one.
    assert api(p, "POST", "/v1/egress/rules", {"host": "other.test"}) == (200, rule)
    assert api(p, "GET", "/v1/egress")[1]["rules"][1] == rule

    status, obj = api(p, "DELETE", "/v1/egress/rules/rt-1")
    assert status == 200 and obj == {"removed": rule}, obj
    assert via_proxy(p, "other.test", port) == 403
    assert api(p, "DELETE", "/v1/egress/rules/rt-1")[0] == 404

    added = management_events(p, "egress rule added")
    removed = management_events(p, "egress rule removed")
    assert [(r["id"], r["host"]) for r in added] == [("rt-1", "other.test")], added
    assert [(r["id"], r["host"]) for r in removed] == [("rt-1", "other.test")], removed


def test_cidr_rule_admits_a_literal_ip(managed, http_upstream):
    p, port = managed, http_upstream.port
    assert via_proxy(p, "127.0.0.2", port) == 403
    status, rule = api(p, "POST", "/v1/egress/rules", {"cidr": "127.0.0.2/32"})
    assert status == 201 and rule["cidr"] == "127.0.0.2/32", rule
    assert via_proxy(p, "127.0.0.2", port) == 200


def test_mode_warn_lets_denied_hosts_through_with_a_warn_record(managed, http_upstream):
    p, port = managed, http_upstream.port
    assert api(p, "PUT", "/v1/egress/mode", {"mode": "warn"}) == (200, {"mode": "warn", "mode_source": "runtime"})
    obj = api(p, "GET", "/v1/egress")[1]
    assert (obj["mode"], obj["mode_source"], obj["config_mode"]) == ("warn", "runtime", "enforce")
    assert via_proxy(p, "warn.test", port) == 200
    recs = p.wait_audit(1, predicate=lambda r: r["audit"]["host"].startswith("warn.test"))
    assert audit.first_transform(recs[-1])["annotations"] == {"action": "warn"}, recs[-1]
    assert api(p, "PUT", "/v1/egress/mode", {"mode": "enforce"})[0] == 200
    assert via_proxy(p, "warn.test", port) == 403
    modes = [r["mode"] for r in management_events(p, "egress mode set")]
    assert modes == ["warn", "enforce"]


@pytest.mark.parametrize("token", [None, "wrong"])
def test_wrong_or_missing_key_is_401(managed, http_upstream, token):
    p = managed
    for method, path, body in (("GET", "/v1/egress", None), ("POST", "/v1/egress/rules", {"host": "other.test"}),
                               ("DELETE", "/v1/egress/rules/rt-1", None), ("PUT", "/v1/egress/mode", {"mode": "warn"})):
        assert api(p, method, path, body, token=token) == (401, {"error": "unauthorized"}), path
    assert via_proxy(p, "other.test", http_upstream.port) == 403
    assert api(p, "GET", "/v1/egress")[1]["mode"] == "enforce"


def test_config_rules_are_read_only_and_bad_input_is_refused(managed):
    p = managed
    status, obj = api(p, "DELETE", "/v1/egress/rules/cfg-1")
    assert status == 403 and "read-only" in obj["error"] and "config file" in obj["error"], obj
    assert api(p, "GET", "/v1/egress")[1]["rules"][0]["id"] == "cfg-1"
    for body, needle in (({"host": "bad["}, "invalid glob"), ({"cidr": "10.0.0.0/33"}, "CIDR"),
                         ({"host": "a.test", "cidr": "10.0.0.0/8"}, "exactly one"), ({"path": "/x"}, "unknown key"),
                         ({"host": 7}, "must be a string"), ("not json", "JSON object"), ({"host": ""}, "empty")):
        status, obj = api(p, "POST", "/v1/egress/rules", body)
        assert status == 400 and needle in obj["error"], (body, obj)
    status, obj = api(p, "PUT", "/v1/egress/mode", {"mode": "loud"})
    assert status == 400 and "warn" in obj["error"], obj
    assert api(p, "PUT", "/v1/egress/rules", {"host": "a.test"})[0] == 405
    assert api(p, "POST", "/v1/egress")[0] == 405
    assert api(p, "GET", "/v1/egress")[1]["rules"] == [{"id": "cfg-1", "source": "config", "host": "allowed.test"}]


def test_rules_and_mode_survive_a_restart(proxy_factory, state_path, http_upstream):
    port = http_upstream.port
    cfg = egress_config(proxy_factory, state_path)
    first = proxy_factory.start(config=cfg, env=KEY_ENV)
    assert api(first, "POST", "/v1/egress/rules", {"host": "other.test"})[0] == 201
    assert api(first, "POST", "/v1/egress/rules", {"host": "denied.test"})[0] == 201
    assert api(first, "DELETE", "/v1/egress/rules/rt-2")[0] == 200
    assert api(first, "PUT", "/v1/egress/mode", {"mode": "warn"})[0] == 200
    assert stat.S_IMODE(os.stat(state_path).st_mode) == 0o600
    assert not os.path.exists(str(state_path) + ".tmp")
    first.stop()

    second = proxy_factory.start(config=cfg, env=KEY_ENV)
    obj = api(second, "GET", "/v1/egress")[1]
    assert (obj["mode"], obj["mode_source"]) == ("warn", "runtime")
    assert obj["rules"][1:] == [{"id": "rt-1", "source": "runtime", "host": "other.test"}]
    assert api(second, "PUT", "/v1/egress/mode", {"mode": "enforce"})[0] == 200
    assert via_proxy(second, "other.test", port) == 200
    assert via_proxy(second, "denied.test", port) == 403
    # Ids are never handed out twice, across restarts too.
    assert api(second, "POST", "/v1/egress/rules", {"host": "new.test"})[1]["id"] == "rt-3"
    assert stat.S_IMODE(os.stat(state_path).st_mode) == 0o600


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    ('{"version":1,"rules":[{"id":"rt-1","host":"bad["}]}', "invalid glob"),
    ('{"version":1,"rules":[{"id":"rt-1","host":"a.test"},{"id":"rt-1","host":"b.test"}]}', "duplicate id"),
    ('{"version":1,"mode":"loud"}', "mode"),
    ("", "not valid JSON"),
])
def test_a_damaged_state_file_stops_start_up(proxy_factory, state_path, text, needle):
    state_path.write_text(text)
    cfg = egress_config(proxy_factory, state_path)
    with pytest.raises(ProxyStartError) as e:
        proxy_factory.start(config=cfg, env=KEY_ENV)
    message = str(e.value)
    assert f"management.state_path {state_path}" in message and needle in message, message
    checked = run_binary(["-check", "-config", str(proxy_factory.started[-1].config_path)], env=KEY_ENV)
    assert checked.returncode == 1 and f"management.state_path {state_path}" in checked.stderr, checked
    assert state_path.read_text() == text  # never rewritten or dropped


def test_an_unreadable_state_file_stops_start_up(proxy_factory, state_path):
    state_path.mkdir()  # a directory where the file should be: cannot be read as one
    cfg = egress_config(proxy_factory, state_path)
    with pytest.raises(ProxyStartError) as e:
        proxy_factory.start(config=cfg, env=KEY_ENV)
    assert f"management.state_path {state_path}" in str(e.value), str(e.value)


def test_reload_keeps_the_runtime_rules(managed, http_upstream):
    p, port = managed, http_upstream.port
    assert api(p, "POST", "/v1/egress/rules", {"host": "other.test"})[0] == 201
    cfg = p.config  # the dict the proxy was started with
    cfg["transforms"][0]["config"]["domains"] = ["allowed.test", "a.glob.test"]
    p.config_path.write_text(yamlgen.dump(cfg))
    status, _ = api(p, "POST", "/v1/reload")
    assert status == 200
    assert via_proxy(p, "other.test", port) == 200
    assert via_proxy(p, "a.glob.test", port) == 200
    assert via_proxy(p, "denied.test", port) == 403
    hosts = [r.get("host") for r in api(p, "GET", "/v1/egress")[1]["rules"]]
    assert hosts == ["allowed.test", "a.glob.test", "other.test"]


def test_changes_are_refused_without_an_allowlist_or_a_state_path(proxy_factory, state_path, tmp_path):
    no_allowlist = egress_config(proxy_factory, state_path, transforms=[])
    p = proxy_factory.start(config=no_allowlist, env=KEY_ENV)
    status, obj = api(p, "POST", "/v1/egress/rules", {"host": "a.test"})
    assert status == 409 and "no allowlist transform" in obj["error"], obj
    assert api(p, "PUT", "/v1/egress/mode", {"mode": "warn"})[0] == 409
    assert not state_path.exists()

    no_state = proxy_factory.config(domains=["allowed.test"], extra={"management": {"listen": "127.0.0.1:0"}})
    q = proxy_factory.start(config=no_state, env=KEY_ENV)
    status, obj = api(q, "POST", "/v1/egress/rules", {"host": "a.test"})
    assert status == 409 and "management.state_path is not set" in obj["error"], obj
    assert api(q, "GET", "/v1/egress")[1]["state_path"] is None


def egress_cli(*args, env=KEY_ENV):
    return run_binary(["egress", *args], env=env)


def test_the_egress_cli(managed, http_upstream):
    p, port = managed, http_upstream.port
    addr = "127.0.0.1:%d" % p.addr("management")[1]
    r = egress_cli("add", "-host", "other.test", "-management", addr)
    assert r.returncode == 0 and "added" in r.stdout and "rt-1" in r.stdout and "other.test" in r.stdout, r
    assert via_proxy(p, "other.test", port) == 200

    # The address (and the key's variable) can come from the config file's management section.
    cfg = dict(p.config)
    cfg["management"] = dict(cfg["management"], listen=addr)
    cfg_path = p.workdir / "cli-view.yaml"
    cfg_path.write_text(yamlgen.dump(cfg))
    r = egress_cli("list", "-config", str(cfg_path))
    assert r.returncode == 0, r
    assert "mode: enforce (config; config: enforce)" in r.stdout
    assert any(l.split()[:4] == ["rt-1", "runtime", "host", "other.test"] for l in r.stdout.splitlines()), r.stdout
    assert any(l.split()[:4] == ["cfg-1", "config", "host", "allowed.test"] for l in r.stdout.splitlines())
    listed = json.loads(egress_cli("list", "-json", "-management", addr).stdout)
    assert listed["rules"][-1]["host"] == "other.test"

    assert egress_cli("mode", "warn", "-management", addr).stdout.strip() == "mode warn"
    assert via_proxy(p, "warn.test", port) == 200
    assert egress_cli("mode", "enforce", "-management", addr).returncode == 0
    r = egress_cli("remove", "rt-1", "-management", addr)
    assert r.returncode == 0 and "removed" in r.stdout, r
    assert via_proxy(p, "other.test", port) == 403

    r = egress_cli("remove", "cfg-1", "-management", addr)
    assert r.returncode == 1 and "403" in r.stderr and "read-only" in r.stderr, r
    r = egress_cli("list", "-management", addr, env={"IRON_MANAGEMENT_API_KEY": "wrong"})
    assert r.returncode == 1 and "401" in r.stderr and "IRON_MANAGEMENT_API_KEY" in r.stderr, r
    r = egress_cli("list", "-management", addr, env={})
    assert r.returncode == 1 and "IRON_MANAGEMENT_API_KEY is not set" in r.stderr, r
    r = egress_cli("add", "-management", addr)
    assert r.returncode == 2, r
    r = egress_cli("remove", "rt-1 HTTP/1.1\r\nX: y", "-management", addr)
    assert r.returncode == 2, r


def test_the_egress_cli_says_when_the_proxy_is_unreachable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = egress_cli("list", "-management", f"127.0.0.1:{port}")
    assert r.returncode == 1 and f"cannot reach the management API at 127.0.0.1:{port}" in r.stderr, r
