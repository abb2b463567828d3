"""The judge transform (an LLM allow/deny gate) against a local stand-in for the model APIs that
speaks the real Anthropic Messages and OpenAI Chat Completions formats (harness/llm_server.py):
ALLOW / DENY, error statuses, slow answers and unreadable answers (→ the fallback), the circuit
breaker and its half-open probe, max_concurrent, the API key kept out of every log line and audit
record, HTTP/1.1 and HTTP/2 clients, and the Go proxy's own judge configs under -check."""
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from harness import audit, clients
from harness.configs import allowlist_transform
from harness.llm_server import ANTHROPIC_PATH, OPENAI_PATH, LLMServer
from harness.proxy import run_binary

pytestmark = pytest.mark.timeout(90)

KEY_VAR = "JUDGE_E2E_API_KEY"
KEY = "sk-e2e-judge-KEY-5f1c0a9d7e3b"
GO_CONFIGS = Path("/work/shared/reference/go-configs")


@pytest.fixture
def llm():
    srv = LLMServer().start()
    yield srv
    srv.stop()


def judge_entry(llm, provider="anthropic", **kw):
    cfg = {
        "name": "path-policy",
        "prompt": 'ALLOW requests whose path starts with "/allowed"; DENY everything else.',
        "rules": [{"host": "allowed.test"}],
        "provider": {"type": provider, "model": "test-model", "api_key_env": KEY_VAR,
                     "base_url": llm.base_url, "max_tokens": 64},
    }
    cfg.update(kw)
    return {"name": "judge", "config": cfg}


def start(proxy_factory, llm, provider="anthropic", *, log_level="info", **kw):
    return proxy_factory.start(transforms=[allowlist_transform("allowed.test"), judge_entry(llm, provider, **kw)],
                               env={KEY_VAR: KEY}, log_level=log_level)


def get(proxy, upstream, path, **kw):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}",
                        headers=[f"Host: allowed.test:{upstream.port}"], **kw)


def judge_trace(rec):
    [tr] = [t for t in rec["request_transforms"] if t["name"] == "path-policy"]
    return tr


def no_key_anywhere(proxy):
    text = proxy.stderr_text() + proxy.stdout_text()
    if proxy.audit_path and proxy.audit_path.exists():
        text += proxy.audit_path.read_text()
    assert KEY not in text


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_allow_and_deny(proxy_factory, http_upstream, llm, provider):
    proxy = start(proxy_factory, llm, provider)
    ok = get(proxy, http_upstream, "/echo/allowed?q=1", method="POST", data='{"task":"fetch"}',
             extra=["-H", "Content-Type: application/json"])
    assert ok.http_code == 200, ok
    assert ok.json()["path"] == "/echo/allowed" and ok.json()["body"] == '{"task":"fetch"}'
    denied = get(proxy, http_upstream, "/denied")
    assert denied.http_code == 403, denied
    assert denied.body == b""
    assert len(http_upstream.requests) == 1  # the denied request never reached the origin

    # The wire format each API expects.
    first = llm.calls[0]
    path = ANTHROPIC_PATH if provider == "anthropic" else OPENAI_PATH
    assert first["method"] == "POST" and first["path"] == path
    headers = {k.lower(): v for k, v in first["headers"].items()}
    if provider == "anthropic":
        assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in headers
        assert first["body"]["max_tokens"] == 64
        # The policy sits in the system prompt as one JSON string.
        assert 'path starts with \\"/allowed\\"' in first["body"]["system"]
    else:
        assert headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in headers
        assert first["body"]["max_completion_tokens"] == 64
        assert first["body"]["messages"][0]["role"] == "system"
    env = first["envelope"]
    assert list(env)[:4] == ["method", "url", "host", "headers"]
    assert env["method"] == "POST" and env["url"] == "/echo/allowed?q=1"
    assert env["host"] == f"allowed.test:{http_upstream.port}"
    assert env["body"] == '{"task":"fetch"}'
    assert env["headers"][0]["name"] == "Content-Type"  # priority headers first

    recs = proxy.wait_audit(2)
    allow_rec = next(r for r in recs if r["audit"]["path"] == "/echo/allowed")
    deny_rec = next(r for r in recs if r["audit"]["path"] == "/denied")
    ann = judge_trace(allow_rec)["annotations"]
    assert ann["judge.instance"] == "path-policy"
    assert ann["judge.model"] == "test-model-test"  # as the API reported it
    assert ann["judge.decision"] == "ALLOW" and ann["judge.reason"] == "path is allowed"
    assert ann["judge.input_tokens"] == 321 and ann["judge.output_tokens"] == 17
    assert isinstance(ann["judge.duration_ms"], float)
    assert allow_rec["audit"]["action"] == "allow"
    a = audit.check_shape(deny_rec)
    assert a["action"] == "reject" and a["status_code"] == 403
    assert deny_rec["rejected_by"] == "path-policy"
    tr = judge_trace(deny_rec)
    assert tr["action"] == "reject"
    assert tr["annotations"]["judge.decision"] == "DENY"
    assert "judge.fallback_applied" not in tr["annotations"]
    no_key_anywhere(proxy)


def test_fenced_lowercase_answer_is_read(proxy_factory, http_upstream, llm):
    llm.set_mode("fenced")
    proxy = start(proxy_factory, llm)
    assert get(proxy, http_upstream, "/allowed").http_code == 200
    assert get(proxy, http_upstream, "/nope").http_code == 403
    recs = proxy.wait_audit(2)
    decisions = sorted(judge_trace(r)["annotations"]["judge.decision"] for r in recs)
    assert decisions == ["ALLOW", "DENY"]


def test_metrics_time_each_judge_call(proxy_factory, http_upstream, llm):
    proxy = start(proxy_factory, llm)
    assert get(proxy, http_upstream, "/allowed").http_code == 200
    assert get(proxy, http_upstream, "/denied").http_code == 403
    proxy.wait_audit(2)
    text = clients.curl(proxy.metrics_url + "/metrics").text
    assert 'iron_proxy_transform_duration_seconds_count{transform="path-policy",phase="request"} 2' in text, text
    assert 'iron_proxy_transform_errors_total{transform="path-policy",phase="request"} 0' in text


@pytest.mark.parametrize("mode", ["status:429", "status:500", "malformed"])
@pytest.mark.parametrize("fallback", ["deny", "skip"])
def test_errors_apply_the_fallback(proxy_factory, http_upstream, llm, mode, fallback):
    llm.set_mode(mode)
    proxy = start(proxy_factory, llm, fallback=fallback)
    r = get(proxy, http_upstream, "/allowed")
    assert r.http_code == (403 if fallback == "deny" else 200), r
    [rec] = proxy.wait_audit(1)
    ann = judge_trace(rec)["annotations"]
    assert ann["judge.fallback_applied"] == fallback
    assert ann["judge.decision"] == ("FALLBACK_DENY" if fallback == "deny" else "FALLBACK_ALLOW")
    if mode == "malformed":
        assert ann["judge.raw_output"] == "I think this request is probably fine."
        assert ann["judge.reason"].startswith("parsing decision")
    else:
        assert ann["judge.reason"].startswith(f"adapter error: anthropic returned {mode[7:]}: ")
        assert "judge.raw_output" not in ann
    no_key_anywhere(proxy)


def test_slow_answer_times_out_to_fallback(proxy_factory, http_upstream, llm):
    llm.set_mode("slow:4")
    proxy = start(proxy_factory, llm, timeout="500ms")
    t0 = time.monotonic()
    r = get(proxy, http_upstream, "/allowed")
    assert r.http_code == 403, r
    assert time.monotonic() - t0 < 3.5  # the timeout, not the model, ended the wait
    [rec] = proxy.wait_audit(1)
    ann = judge_trace(rec)["annotations"]
    assert ann["judge.decision"] == "FALLBACK_DENY"
    assert ann["judge.reason"] == "adapter error: calling anthropic: timeout after 500ms"


def test_workers_keep_serving_while_the_model_thinks(proxy_factory, http_upstream, llm):
    """More judged requests wait on the model than the proxy has worker threads, and a request
    outside the judge's rules is still answered meanwhile: the call never holds a worker."""
    llm.set_mode("slow:2")
    proxy = start(proxy_factory, llm)
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(proxy, http_upstream, "/allowed")))
               for _ in range(2 * (os.cpu_count() or 1) + 2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while llm.call_count() < len(threads) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm.call_count() == len(threads)  # every call is out at once
    fast = clients.curl(f"http://127.0.0.1:{proxy.http_port}/x", headers=["Host: other.test"])
    assert fast.http_code == 403
    assert all(t.is_alive() for t in threads)  # answered while every judged request still waits
    for t in threads:
        t.join(15)
    assert [r.http_code for r in results] == [200] * len(threads)


def test_circuit_breaker_opens_then_probes_once(proxy_factory, http_upstream, llm):
    llm.set_mode("status:500")
    proxy = start(proxy_factory, llm, fallback="skip",
                  circuit_breaker={"consecutive_failures": 2, "cooldown": "1s"})
    for _ in range(2):
        assert get(proxy, http_upstream, "/denied").http_code == 200
    assert llm.call_count() == 2
    # Open: the model is not asked.
    assert get(proxy, http_upstream, "/denied").http_code == 200
    assert llm.call_count() == 2
    recs = proxy.wait_audit(3)
    tripped = judge_trace(recs[2])["annotations"]
    assert tripped["judge.circuit_breaker_tripped"] is True
    assert tripped["judge.reason"] == "circuit breaker open"

    # After the cooldown one probe goes out; it fails, so the breaker opens again.
    time.sleep(1.2)
    assert get(proxy, http_upstream, "/denied").http_code == 200
    assert llm.call_count() == 3
    assert get(proxy, http_upstream, "/denied").http_code == 200
    assert llm.call_count() == 3

    # Next probe succeeds: closed again, decisions are the model's.
    llm.set_mode("path")
    time.sleep(1.2)
    assert get(proxy, http_upstream, "/denied").http_code == 403
    assert get(proxy, http_upstream, "/denied2").http_code == 403
    assert llm.call_count() == 5


def test_half_open_admits_a_single_probe(proxy_factory, http_upstream, llm):
    llm.set_mode("status:503")
    proxy = start(proxy_factory, llm, fallback="deny",
                  circuit_breaker={"consecutive_failures": 1, "cooldown": "1s"})
    assert get(proxy, http_upstream, "/allowed").http_code == 403
    time.sleep(1.2)
    llm.set_mode("slow:1.5")  # the probe is slow: concurrent requests must not also probe
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(proxy, http_upstream, "/allowed")))
               for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(15)
    assert llm.call_count() == 2  # the first failure + exactly one probe
    assert sorted(r.http_code for r in results) == [200, 403, 403, 403]


def test_max_concurrent_overflow_gets_the_fallback(proxy_factory, http_upstream, llm):
    llm.set_mode("slow:1.5")
    proxy = start(proxy_factory, llm, fallback="deny", max_concurrent=1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(proxy, http_upstream, "/allowed")))
               for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(15)
    assert sorted(r.http_code for r in results) == [200, 403, 403]
    assert llm.call_count() == 1
    recs = proxy.wait_audit(3)
    reasons = [judge_trace(r)["annotations"]["judge.reason"] for r in recs]
    assert reasons.count("max_concurrent (1) calls in flight") == 2


def test_requests_outside_the_rules_are_not_judged(proxy_factory, http_upstream, llm):
    proxy = proxy_factory.start(
        transforms=[allowlist_transform("allowed.test", "other.test"),
                    judge_entry(llm, rules=[{"host": "allowed.test", "methods": ["POST"]}])],
        env={KEY_VAR: KEY})
    assert get(proxy, http_upstream, "/denied").http_code == 200  # GET: rule does not match
    assert llm.call_count() == 0
    [rec] = proxy.wait_audit(1)
    tr = judge_trace(rec)
    assert tr["action"] == "allow" and "annotations" not in tr


def test_h2_client(proxy_factory, https_upstream, llm, ca_cert):
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}",
                                transforms=[allowlist_transform("allowed.test"), judge_entry(llm)],
                                env={KEY_VAR: KEY})

    def h2(path):
        return clients.curl(f"https://allowed.test:{port}{path}", resolve=f"allowed.test:{port}:127.0.0.1",
                            cacert=ca_cert, extra=["--http2"])

    ok, denied = h2("/allowed"), h2("/denied")
    assert ok.http_code == 200 and ok.info.get("http_version") == "2", ok
    assert denied.http_code == 403 and denied.info.get("http_version") == "2", denied
    recs = proxy.wait_audit(2)
    assert sorted(judge_trace(r)["annotations"]["judge.decision"] for r in recs) == ["ALLOW", "DENY"]
    assert llm.calls[0]["envelope"]["url"] == "/allowed"


def test_https_endpoint_verified(proxy_factory, http_upstream, upstream_pki):
    """An https:// base_url: the endpoint's certificate is verified (SSL_CERT_FILE names the CA
    that issued it); an endpoint the trust store does not know gets the fallback."""
    srv = LLMServer(tls_context=upstream_pki.server_context()).start()
    try:
        trusted = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), judge_entry(srv)],
                                      env={KEY_VAR: KEY, "SSL_CERT_FILE": str(upstream_pki.ca_path)})
        assert get(trusted, http_upstream, "/allowed").http_code == 200
        assert get(trusted, http_upstream, "/denied").http_code == 403
        assert srv.call_count() == 2
        [headers] = {json.dumps(c["headers"], sort_keys=True) for c in srv.calls[:1]}
        assert json.loads(headers)["Host"] == f"127.0.0.3:{srv.port}"

        untrusted = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), judge_entry(srv)],
                                        env={KEY_VAR: KEY, "SSL_CERT_FILE": "/dev/null"})
        assert get(untrusted, http_upstream, "/allowed").http_code == 403
        assert srv.call_count() == 2
        [rec] = untrusted.wait_audit(1)
        assert "certificate verify failed" in judge_trace(rec)["annotations"]["judge.reason"]
    finally:
        srv.stop()


def test_judge_endpoint_skips_deny_cidrs_but_workloads_cannot_reach_it(proxy_factory, http_upstream, llm):
    """The model endpoint is the operator's: the judge reaches it although upstream_deny_cidrs
    covers its address, while a workload request to that same address is still refused."""
    proxy = proxy_factory.start(
        transforms=[allowlist_transform("allowed.test", "127.0.0.3"), judge_entry(llm)],
        env={KEY_VAR: KEY}, deny_cidrs=["127.0.0.3/32"])
    assert get(proxy, http_upstream, "/allowed").http_code == 200
    assert llm.call_count() == 1
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}{ANTHROPIC_PATH}", method="POST", data="{}",
                     headers=[f"Host: 127.0.0.3:{llm.port}"])
    assert r.http_code == 502, r
    assert llm.call_count() == 1
    recs = proxy.wait_audit(2)
    blocked = next(x for x in recs if x["audit"]["host"].startswith("127.0.0.3"))
    assert "denied by upstream_deny_cidrs" in blocked["error"]


def test_key_never_logged_even_when_echoed(proxy_factory, http_upstream, llm):
    """An endpoint that echoes the key in its error body: the key is scrubbed from the reason, the
    warning log line and the audit record."""
    llm.set_mode("status:401")
    llm.echo_key = True
    proxy = start(proxy_factory, llm, log_level="debug")
    r = get(proxy, http_upstream, "/allowed")
    assert r.http_code == 403
    [rec] = proxy.wait_audit(1)
    reason = judge_trace(rec)["annotations"]["judge.reason"]
    assert "[REDACTED]" in reason, reason
    assert proxy.wait_stderr("judge adapter error")
    no_key_anywhere(proxy)


def test_unset_key_variable_fails_check_naming_it(bed, tmp_path, llm):
    cfg = tmp_path / "judge.yaml"
    cfg.write_text(f"""
dns: {{enabled: false}}
proxy: {{http_listen: "127.0.0.1:0"}}
tls: {{ca_cert: {bed.ca_cert}, ca_key: {bed.ca_key}}}
transforms:
  - name: judge
    config:
      name: p
      prompt: deny all
      rules: [{{host: "*"}}]
      provider: {{type: openai, model: m, api_key_env: {KEY_VAR}, base_url: "{llm.base_url}"}}
""")
    bad = run_binary(["-check", "-config", str(cfg)])
    assert bad.returncode != 0
    assert f'env var "{KEY_VAR}" is empty' in bad.stderr + bad.stdout
    good = run_binary(["-check", "-config", str(cfg)], env={KEY_VAR: KEY})
    assert good.returncode == 0, good.stderr
    assert KEY not in good.stderr + good.stdout


@pytest.mark.skipif(not GO_CONFIGS.is_dir(), reason="the Go proxy's configs are not on this machine")
@pytest.mark.parametrize("name", ["judge_pipeline", "judge_body", "judge_openai_pipeline", "judge_openai_body"])
def test_go_judge_configs_pass_check(bed, tmp_path, name):
    src = GO_CONFIGS / f"integration_test__testdata__{name}.yaml"
    (tmp_path / "tmp").mkdir()
    shutil.copy(bed.ca_cert, tmp_path / "tmp" / "ca.crt")
    shutil.copy(bed.ca_key, tmp_path / "tmp" / "ca.key")
    cp = run_binary(["-check", "-config", str(src)], cwd=tmp_path,
                    env={"ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": KEY})
    assert cp.returncode == 0, cp.stderr


REAL_SECRET = "real-Zx81-upstream-credential-7c2e"


def test_credentials_set_before_the_judge_never_reach_the_model(proxy_factory, http_upstream, llm):
    """A judge placed after transforms that put real credentials into the request (a start-up
    warning says so) still never shows them to the model: the origin gets them, the model sees
    [REDACTED] in the header, the query and the body alike."""
    secrets = {"name": "secrets", "config": {"secrets": [
        {"source": {"type": "env", "var": "JUDGE_E2E_REAL"}, "rules": [{"host": "allowed.test"}],
         "replace": {"proxy_value": "PLACEHOLDER-1", "match_headers": ["Authorization"], "match_body": True}},
        {"source": {"type": "env", "var": "JUDGE_E2E_REAL"}, "rules": [{"host": "allowed.test"}],
         "inject": {"query_param": "key"}},
        {"source": {"type": "env", "var": "JUDGE_E2E_REAL"}, "rules": [{"host": "allowed.test"}],
         "inject": {"header": "X-Basic", "formatter": "Basic {{ base64 \"user:\" .Value }}"}},
    ]}}
    proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), secrets, judge_entry(llm)],
                                env={KEY_VAR: KEY, "JUDGE_E2E_REAL": REAL_SECRET}, log_level="info")
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/allowed/x?q=1",
                     headers=[f"Host: allowed.test:{http_upstream.port}", "Authorization: Bearer PLACEHOLDER-1",
                              "Content-Type: application/json"],
                     data='{"token": "PLACEHOLDER-1"}')
    assert r.http_code == 200, r
    origin = http_upstream.requests[-1]
    assert REAL_SECRET in str(origin), origin  # the swap itself happened
    [call] = llm.calls
    import base64
    encoded = base64.b64encode(("user:" + REAL_SECRET).encode()).decode()
    assert REAL_SECRET not in call["raw"] and encoded not in call["raw"], call["raw"]
    envelope = call["envelope"]
    assert "[REDACTED]" in envelope["url"], envelope
    headers = {h["name"].lower(): h["value"] for h in envelope["headers"]}
    assert headers.get("authorization") == "Bearer [REDACTED]", headers
    assert headers.get("x-basic") == "[REDACTED]", headers
    assert "[REDACTED]" in envelope.get("body", ""), envelope
    assert "placed after secrets" in proxy.stderr_text()
