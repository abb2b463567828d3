"""The `secrets` transform (issue 3): placeholders swapped for real credentials at
egress, only for bound hosts; inject mode; require; body caps; file-source rotation.

The upstream /echo endpoint reports what arrived (method, raw target, headers in wire order, body),
so "nothing else changed" is checked by comparing the proxied request with the same request sent
directly to the upstream with the real value already in place.
"""
import base64
import json
import os
import signal
import threading
import time
import urllib.parse

import pytest

from harness import audit, clients

# The seed's docker-compose demo (README "secrets"): two env secrets bound to httpbin.org, which the
# suite's allowed.test stands in for; example.com (blocked) is denied.test.
OPENAI_PH = "proxy-openai-abc123"
OPENAI_REAL = "sk-real-openai-key-do-not-share"
INTERNAL_PH = "proxy-internal-tok"
INTERNAL_REAL = "real-internal-secret-value"
SEED_ENV = {"OPENAI_API_KEY": OPENAI_REAL, "INTERNAL_TOKEN": INTERNAL_REAL}

PH = "IRONSH_PROXY_e2e-token"
REAL = "real-e2e-secret-7c1d"


# --- helpers ------------------------------------------------------------------------------------

def allowlist(*domains):
    return {"name": "allowlist", "config": {"domains": list(domains)}}


def seed_secrets_transform():
    return {"name": "secrets", "config": {
        "source": "env",
        "secrets": [
            {"var": "OPENAI_API_KEY", "proxy_value": OPENAI_PH, "match_headers": ["Authorization"],
             "hosts": [{"name": "allowed.test"}]},
            {"var": "INTERNAL_TOKEN", "proxy_value": INTERNAL_PH, "match_headers": [],
             "hosts": [{"name": "allowed.test"}]},
        ]}}


def secrets_transform(*entries):
    return {"name": "secrets", "config": {"secrets": list(entries)}}


def env_entry(var="E2E_SECRET", host="allowed.test", **mode):
    e = {"source": {"type": "env", "var": var}, "rules": [{"host": host}]}
    e.update(mode)
    return e


def start(proxy_factory, https_upstream, transforms, env=None, **kw):
    return proxy_factory.start(https_listen=f"127.0.0.1:{https_upstream.port}",
                               transforms=transforms, env=env, **kw)


def via(listener, proxy, host, port, path):
    """curl kwargs reaching https://host:port/path through the tunnel or the HTTPS listener."""
    url = f"https://{host}:{port}{path}"
    if listener == "tunnel":
        return dict(url=url, proxy=proxy.tunnel_url)
    return dict(url=url, resolve=f"{host}:{port}:127.0.0.1")


def direct(upstream, upstream_pki, host, path, **kw):
    """The same request sent straight to the upstream (no proxy)."""
    url = f"{upstream.scheme}://{host}:{upstream.port}{path}"
    return clients.curl(url, resolve=f"{host}:{upstream.port}:127.0.0.2",
                        cacert=upstream_pki.ca_path if upstream.tls else None, **kw)


COMPARED = ("method", "raw_target", "path", "query", "headers", "body", "body_length", "tls")


def wire(echo):
    return {k: echo[k] for k in COMPARED}


def assert_same_request(proxied, expected):
    """Byte-compare what the upstream saw through the proxy with what a direct client sent."""
    a, b = wire(proxied), wire(expected)
    if a != b:
        lines = [f"{k}: proxied={a[k]!r}\n{' ' * len(k)}  direct ={b[k]!r}" for k in COMPARED if a[k] != b[k]]
        raise AssertionError("upstream saw a different request than a direct client sends:\n"
                             + "\n".join(lines))


def hdrs(echo):
    return {k.lower(): v for k, v in echo["headers"]}


def trace(rec, name="secrets"):
    for tr in rec.get("request_transforms") or []:
        if tr["name"] == name:
            return tr
    raise AssertionError(f"no {name} trace in {json.dumps(rec)}")


def inner_for(proxy, path_prefix, n=1):
    return proxy.wait_audit(n, predicate=lambda r: r["audit"]["method"] != "CONNECT"
                            and r["audit"]["path"].startswith(path_prefix))


# --- 1. the seed demo's five requests -----------------------------------------------------------

@pytest.mark.parametrize("listener", ["tunnel", "https"])
def test_seed_demo_five_requests(proxy_factory, https_upstream, upstream_pki, ca_cert, listener):
    proxy = start(proxy_factory, https_upstream,
                  [allowlist("allowed.test"), seed_secrets_transform()], env=SEED_ENV)
    port = https_upstream.port

    # 1. Allowed request: reaches the upstream unchanged; secrets trace without annotations.
    r = clients.curl(**via(listener, proxy, "allowed.test", port, "/echo/get"), cacert=ca_cert)
    assert r.http_code == 200, r
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/get")
    assert d.http_code == 200, d
    assert_same_request(r.json(), d.json())
    [rec] = inner_for(proxy, "/echo/get")
    audit.check_shape(rec)
    assert rec["audit"]["action"] == "allow"
    assert "annotations" not in trace(rec), rec

    # 2. Blocked request: 403, never reaches an upstream.
    before = https_upstream.connections
    r = clients.curl(**via(listener, proxy, "denied.test", port, "/echo/blocked"), cacert=ca_cert)
    if listener == "tunnel":
        assert r.http_connect == 403, r
    else:
        assert r.http_code == 403, r
    assert https_upstream.connections == before
    [rec] = proxy.wait_audit(1, predicate=lambda r: r["audit"]["host"].startswith("denied.test"))
    assert rec["audit"]["action"] == "reject" and rec["audit"]["status_code"] == 403
    assert rec["rejected_by"] == "allowlist"

    # 3. Header swap (Authorization, listed).
    r = clients.curl(**via(listener, proxy, "allowed.test", port, "/echo/headers"), cacert=ca_cert,
                     headers=[f"Authorization: Bearer {OPENAI_PH}"])
    assert r.http_code == 200, r
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/headers",
               headers=[f"Authorization: Bearer {OPENAI_REAL}"])
    assert_same_request(r.json(), d.json())
    assert hdrs(r.json())["authorization"] == f"Bearer {OPENAI_REAL}"
    [rec] = inner_for(proxy, "/echo/headers")
    assert trace(rec)["annotations"] == {
        "swapped": [{"secret": "OPENAI_API_KEY", "locations": ["header:Authorization"]}]}

    # 4. Custom header swap (INTERNAL_TOKEN scans all headers).
    r = clients.curl(**via(listener, proxy, "allowed.test", port, "/echo/custom"), cacert=ca_cert,
                     headers=[f"X-Internal: {INTERNAL_PH}", "X-Other: untouched"])
    assert r.http_code == 200, r
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/custom",
               headers=[f"X-Internal: {INTERNAL_REAL}", "X-Other: untouched"])
    assert_same_request(r.json(), d.json())
    [rec] = inner_for(proxy, "/echo/custom")
    assert trace(rec)["annotations"] == {
        "swapped": [{"secret": "INTERNAL_TOKEN", "locations": ["header:X-Internal"]}]}

    # 5. Query swap: order and every other byte of the query string kept.
    r = clients.curl(**via(listener, proxy, "allowed.test", port,
                           f"/echo/query?token={OPENAI_PH}&q=hello"), cacert=ca_cert)
    assert r.http_code == 200, r
    d = direct(https_upstream, upstream_pki, "allowed.test", f"/echo/query?token={OPENAI_REAL}&q=hello")
    assert_same_request(r.json(), d.json())
    assert r.json()["query"] == f"token={OPENAI_REAL}&q=hello"
    [rec] = inner_for(proxy, "/echo/query")
    assert trace(rec)["annotations"] == {
        "swapped": [{"secret": "OPENAI_API_KEY", "locations": ["query:token"]}]}

    # The placeholder never reached the upstream; the real values never reached the log.
    for req in https_upstream.requests:
        assert OPENAI_PH not in json.dumps(req) and INTERNAL_PH not in json.dumps(req), req
    logs = proxy.stderr_text() + proxy.audit_path.read_text()
    assert OPENAI_REAL not in logs and INTERNAL_REAL not in logs


def test_seed_listed_header_does_not_swap_other_headers(proxy_factory, https_upstream, ca_cert):
    """OPENAI_API_KEY lists only Authorization: its placeholder in another header stays."""
    proxy = start(proxy_factory, https_upstream,
                  [allowlist("allowed.test"), seed_secrets_transform()], env=SEED_ENV)
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/x"),
                     cacert=ca_cert, headers=[f"X-Key: {OPENAI_PH}"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["x-key"] == OPENAI_PH
    [rec] = inner_for(proxy, "/echo/x")
    assert "annotations" not in trace(rec), rec


def test_seed_shape_match_body_and_require(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), {"name": "secrets", "config": {
        "source": "env",
        "secrets": [{"var": "OPENAI_API_KEY", "proxy_value": OPENAI_PH, "match_headers": ["Authorization"],
                     "match_body": True, "require": True, "hosts": [{"name": "*.test"}]}]}}],
        env=SEED_ENV)
    port = https_upstream.port
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/sb"), cacert=ca_cert,
                     data=f'{{"key":"{OPENAI_PH}"}}')
    assert r.http_code == 200, r
    assert r.json()["body"] == f'{{"key":"{OPENAI_REAL}"}}'
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/sb2"), cacert=ca_cert)
    assert r.http_code == 403, r
    [rec] = inner_for(proxy, "/echo/sb2")
    assert rec["rejected_by"] == "secrets"


def test_legacy_entry_shape(proxy_factory, https_upstream, upstream_pki, ca_cert):
    """Current shape with the replace fields at the entry level (no replace block)."""
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(proxy_value=PH, match_headers=["X-Token"], match_body=True, require=True))],
        env={"E2E_SECRET": REAL})
    port = https_upstream.port
    r = clients.curl(**via("https", proxy, "allowed.test", port, f"/echo/legacy?t={PH}"),
                     cacert=ca_cert, headers=[f"X-Token: {PH}"], data=f"b={PH}")
    assert r.http_code == 200, r
    echo = r.json()
    assert hdrs(echo)["x-token"] == REAL and echo["body"] == f"b={REAL}"
    assert echo["query"] == f"t={PH}", "the legacy form has no match_query"
    [rec] = inner_for(proxy, "/echo/legacy")
    assert trace(rec)["annotations"] == {
        "swapped": [{"secret": "E2E_SECRET", "locations": ["header:X-Token", "body"]}]}
    r = clients.curl(**via("https", proxy, "allowed.test", port, "/echo/legacy2"), cacert=ca_cert)
    assert r.http_code == 403, r


# --- 2. current shape ---------------------------------------------------------------------------

def test_basic_auth_placeholder(proxy_factory, https_upstream, upstream_pki, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_headers": ["Authorization"]}))],
        env={"E2E_SECRET": REAL})
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/basic"),
                     cacert=ca_cert, extra=["-u", f"user:{PH}"])
    assert r.http_code == 200, r
    want = "Basic " + base64.b64encode(f"user:{REAL}".encode()).decode()
    assert hdrs(r.json())["authorization"] == want
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/basic", extra=["-u", f"user:{REAL}"])
    assert_same_request(r.json(), d.json())
    [rec] = inner_for(proxy, "/echo/basic")
    assert trace(rec)["annotations"] == {
        "swapped": [{"secret": "E2E_SECRET", "locations": ["header:Authorization"]}]}


def test_path_placeholder(proxy_factory, https_upstream, upstream_pki, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_path": True}))], env={"E2E_SECRET": REAL})
    path = f"/echo/repos/{PH}/items?x=%2Fa&y=1"
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, path), cacert=ca_cert)
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["path"] == f"/echo/repos/{REAL}/items"
    d = direct(https_upstream, upstream_pki, "allowed.test", path.replace(PH, REAL))
    assert_same_request(echo, d.json())
    [rec] = inner_for(proxy, "/echo/repos")
    assert trace(rec)["annotations"] == {"swapped": [{"secret": "E2E_SECRET", "locations": ["path"]}]}
    # The audited path is the client's (placeholder) path, never the real secret.
    assert REAL not in json.dumps(rec)


def test_path_not_scanned_without_match_path(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH}))], env={"E2E_SECRET": REAL})
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, f"/echo/{PH}"),
                     cacert=ca_cert)
    assert r.http_code == 200, r
    assert r.json()["path"] == f"/echo/{PH}"


def body_proxy(proxy_factory, https_upstream, cap, oversize=None):
    extra = {"max_request_body_bytes": cap}
    if oversize:
        extra["oversize_body"] = oversize
    return start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_body": True}))], env={"E2E_SECRET": REAL},
        proxy_extra=extra)


def test_body_placeholder_below_cap(proxy_factory, https_upstream, upstream_pki, ca_cert, tmp_path):
    proxy = body_proxy(proxy_factory, https_upstream, 4096)
    body = f'{{"key":"{PH}","again":"x{PH}y","pad":"{"z" * 2000}"}}'
    assert len(body) < 4096
    f = tmp_path / "body.json"
    f.write_text(body)
    hs = ["Content-Type: application/json"]
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/body"),
                     cacert=ca_cert, headers=hs, data=f"@{f}")
    assert r.http_code == 200, r
    echo = r.json()
    want = body.replace(PH, REAL)
    assert echo["body"] == want and echo["body_length"] == len(want)
    assert hdrs(echo)["content-length"] == str(len(want))
    f2 = tmp_path / "body2.json"
    f2.write_text(want)
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/body", headers=hs, data=f"@{f2}")
    assert_same_request(echo, d.json())
    [rec] = inner_for(proxy, "/echo/body")
    assert trace(rec)["annotations"] == {"swapped": [{"secret": "E2E_SECRET", "locations": ["body"]}]}


def oversize_body():
    # The placeholder inside the first KiB (inside the buffered prefix) and near the end.
    head = f"start {PH} "
    tail = f" end {PH}"
    filler = "".join(chr(ord("a") + i % 26) for i in range(8192 - len(head) - len(tail)))
    return head + filler + tail


def test_body_placeholder_above_cap_rejected_by_default(proxy_factory, https_upstream, ca_cert,
                                                        tmp_path):
    proxy = body_proxy(proxy_factory, https_upstream, 1024)
    f = tmp_path / "big.txt"
    f.write_text(oversize_body())
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/big"),
                     cacert=ca_cert, data=f"@{f}")
    assert r.http_code == 413, r
    assert https_upstream.requests_for("/echo/big") == []
    [rec] = inner_for(proxy, "/echo/big")
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 413
    assert "max_request_body_bytes" in rec.get("error", ""), rec


def test_body_placeholder_above_cap_forwarded_untouched(proxy_factory, https_upstream, ca_cert,
                                                        tmp_path):
    proxy = body_proxy(proxy_factory, https_upstream, 1024, oversize="forward")
    body = oversize_body()
    f = tmp_path / "big.txt"
    f.write_text(body)
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/big"),
                     cacert=ca_cert, data=f"@{f}")
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["body_length"] == len(body)
    assert echo["body"] == body, "the complete original body must be forwarded byte for byte"
    assert REAL not in echo["body"]
    [rec] = inner_for(proxy, "/echo/big")
    ann = trace(rec).get("annotations", {})
    assert ann.get("body_truncated") is True, rec
    assert "swapped" not in ann, rec


def test_body_not_scanned_without_match_body(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH}))], env={"E2E_SECRET": REAL})
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/nb"),
                     cacert=ca_cert, data=f"k={PH}")
    assert r.http_code == 200, r
    assert r.json()["body"] == f"k={PH}"


def test_inject_header_formatters_and_query_param(proxy_factory, https_upstream, upstream_pki,
                                                  ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(inject={"header": "X-Api-Key", "formatter": "{{ .Value }}"}),
        env_entry(inject={"header": "Authorization",
                          "formatter": 'Basic {{ base64 "x-credential:" .Value }}'}),
        env_entry(inject={"query_param": "api_key"}),
    )], env={"E2E_SECRET": REAL})
    # The client's own values (any casing) are replaced.
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port,
                           "/echo/inject?a=1&api_key=client"), cacert=ca_cert,
                     headers=["x-api-key: client-value", "authorization: Bearer client"])
    assert r.http_code == 200, r
    echo = r.json()
    h = [(k, v) for k, v in echo["headers"]]
    assert [v for k, v in h if k.lower() == "x-api-key"] == [REAL], h
    assert ("X-Api-Key", REAL) in h, "injected header must use the configured spelling"
    basic = "Basic " + base64.b64encode(f"x-credential:{REAL}".encode()).decode()
    assert [v for k, v in h if k.lower() == "authorization"] == [basic], h
    q = urllib.parse.parse_qs(echo["query"])
    assert q == {"a": ["1"], "api_key": [REAL]}, echo["query"]
    [rec] = inner_for(proxy, "/echo/inject")
    assert trace(rec)["annotations"] == {"injected": [
        {"secret": "E2E_SECRET", "locations": ["header:X-Api-Key"]},
        {"secret": "E2E_SECRET", "locations": ["header:Authorization"]},
        {"secret": "E2E_SECRET", "locations": ["query:api_key"]},
    ]}
    assert REAL not in json.dumps(rec)

    # Without any client credential the values are injected all the same.
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, "/echo/inject2"),
                     cacert=ca_cert)
    assert r.http_code == 200, r
    h = hdrs(r.json())
    assert h["x-api-key"] == REAL and h["authorization"] == basic
    assert r.json()["query"] == f"api_key={REAL}"


def test_require_rejects_request_without_token(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_headers": ["Authorization"], "require": True}))],
        env={"E2E_SECRET": REAL})
    port = https_upstream.port
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/noreq"), cacert=ca_cert,
                     headers=["Authorization: Bearer sk-attacker-own-key"])
    assert r.http_code == 403, r
    assert https_upstream.requests_for("/echo/noreq") == []
    [rec] = inner_for(proxy, "/echo/noreq")
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 403
    assert rec["rejected_by"] == "secrets"
    tr = trace(rec)
    assert tr["action"] == "reject"
    assert tr["annotations"]["rejected"] == "E2E_SECRET"

    # With the token the request goes through, swapped.
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/withreq"), cacert=ca_cert,
                     headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["authorization"] == f"Bearer {REAL}"


def test_placeholder_to_unbound_host_is_left_untouched(proxy_factory, https_upstream, upstream_pki,
                                                       ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test", "other.test"),
                                                  secrets_transform(env_entry(replace={
                                                      "proxy_value": PH, "match_query": True,
                                                      "match_path": True}))],
                  env={"E2E_SECRET": REAL})
    path = f"/echo/{PH}?t={PH}"
    r = clients.curl(**via("tunnel", proxy, "other.test", https_upstream.port, path), cacert=ca_cert,
                     headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r
    echo = r.json()
    assert hdrs(echo)["authorization"] == f"Bearer {PH}"
    d = direct(https_upstream, upstream_pki, "other.test", path, headers=[f"Authorization: Bearer {PH}"])
    assert_same_request(echo, d.json())
    assert REAL not in r.text
    [rec] = inner_for(proxy, "/echo/")
    assert "annotations" not in trace(rec), rec

    # Same proxy, bound host: swapped (so the test above can't pass because swapping is broken).
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, path), cacert=ca_cert,
                     headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["authorization"] == f"Bearer {REAL}"
    assert r.json()["path"] == f"/echo/{REAL}" and r.json()["query"] == f"t={REAL}"


def test_unavailable_secret_forwards_the_placeholder(proxy_factory, https_upstream, ca_cert):
    """The env var is unset: as in Go, the request goes on with the placeholder left in place (it
    is inert by design) and the trace says which secret was unavailable."""
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(var="E2E_UNSET_SECRET", replace={"proxy_value": PH}))],
        env={"E2E_UNSET_SECRET": ""})
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/unavail"),
                     cacert=ca_cert, headers=[f"X-Token: {PH}"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["x-token"] == PH
    [rec] = inner_for(proxy, "/echo/unavail")
    assert rec["audit"]["action"] == "allow" and "rejected_by" not in rec
    assert trace(rec)["annotations"] == {"secret_unavailable": ["E2E_UNSET_SECRET"]}


def test_on_unavailable_reject_never_forwards_the_placeholder(proxy_factory, https_upstream, ca_cert):
    """`on_unavailable: reject`: a request carrying the placeholder to a bound host is refused."""
    transform = secrets_transform(env_entry(var="E2E_UNSET_SECRET", replace={"proxy_value": PH}))
    transform["config"]["on_unavailable"] = "reject"
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), transform],
                  env={"E2E_UNSET_SECRET": ""})
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/unavail"),
                     cacert=ca_cert, headers=[f"X-Token: {PH}"])
    assert r.http_code == 403, r
    assert https_upstream.requests_for("/echo/unavail") == []
    [rec] = inner_for(proxy, "/echo/unavail")
    assert rec["rejected_by"] == "secrets"
    ann = trace(rec)["annotations"]
    assert ann["reject_reason"] == "secret_unavailable"
    assert ann["secret_unavailable"] == ["E2E_UNSET_SECRET"]
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/no-token"),
                     cacert=ca_cert)
    assert r.http_code == 200, r  # no placeholder: nothing to keep from the host


def test_query_swap_keeps_order_and_encoding(proxy_factory, https_upstream, upstream_pki, ca_cert):
    """Replace in place: parameter order and the percent-encoding of every other byte are kept."""
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_query": True}))], env={"E2E_SECRET": REAL})
    query = f"z=%2Fa%20b&tok={PH}&b=c+d&a=1&empty=&flag&t2=pre-{PH}-post&z=2"
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, f"/echo/q?{query}"),
                     cacert=ca_cert)
    assert r.http_code == 200, r
    assert r.json()["query"] == query.replace(PH, REAL)
    d = direct(https_upstream, upstream_pki, "allowed.test", f"/echo/q?{query.replace(PH, REAL)}")
    assert_same_request(r.json(), d.json())
    [rec] = inner_for(proxy, "/echo/q")
    assert trace(rec)["annotations"] == {
        "swapped": [{"secret": "E2E_SECRET", "locations": ["query:tok", "query:t2"]}]}


def test_query_not_scanned_without_match_query(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH}))], env={"E2E_SECRET": REAL})
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, f"/echo/q?t={PH}"),
                     cacert=ca_cert)
    assert r.http_code == 200, r
    assert r.json()["query"] == f"t={PH}"


def test_regex_match_headers(proxy_factory, https_upstream, upstream_pki, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_headers": ["/^x-.*-key$/"]}))],
        env={"E2E_SECRET": REAL})
    hs = [f"X-Service-Key: {PH}", f"X-Other: {PH}", f"x-lower-key: a{PH}b"]
    # HTTP/1.1: the point is that a lower-case name keeps its casing, which HTTP/2 cannot carry.
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/re"),
                     cacert=ca_cert, headers=hs, extra=["--http1.1"])
    assert r.http_code == 200, r
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/re",
               headers=[f"X-Service-Key: {REAL}", f"X-Other: {PH}", f"x-lower-key: a{REAL}b"])
    assert_same_request(r.json(), d.json())
    [rec] = inner_for(proxy, "/echo/re")
    assert trace(rec)["annotations"] == {"swapped": [
        {"secret": "E2E_SECRET", "locations": ["header:X-Service-Key", "header:X-Lower-Key"]}]}


def test_basic_auth_without_placeholder_untouched(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_headers": ["Authorization"]}))],
        env={"E2E_SECRET": REAL})
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/b2"),
                     cacert=ca_cert, extra=["-u", "user:own-password"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["authorization"] == "Basic " + base64.b64encode(b"user:own-password").decode()
    [rec] = inner_for(proxy, "/echo/b2")
    assert "annotations" not in trace(rec), rec


@pytest.mark.parametrize("size_delta,status", [(0, 200), (1, 413)])
def test_body_cap_boundary(proxy_factory, https_upstream, ca_cert, tmp_path, size_delta, status):
    """A body of exactly max_request_body_bytes is fully seen (swapped); one byte more is over."""
    cap = 2048
    proxy = body_proxy(proxy_factory, https_upstream, cap)
    body = PH + "x" * (cap + size_delta - 2 * len(PH)) + PH
    assert len(body) == cap + size_delta
    f = tmp_path / "b.txt"
    f.write_text(body)
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/cap"),
                     cacert=ca_cert, data=f"@{f}", headers=["Expect:"])
    assert r.http_code == status, r
    if status == 200:
        assert r.json()["body"] == body.replace(PH, REAL)
    else:
        assert https_upstream.requests_for("/echo/cap") == []


def test_chunked_body_below_cap_swapped(proxy_factory, https_upstream, ca_cert, tmp_path):
    proxy = body_proxy(proxy_factory, https_upstream, 4096)
    body = f"chunked {PH} body"
    f = tmp_path / "c.txt"
    f.write_text(body)
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, "/echo/chunk"),
                     cacert=ca_cert, data=f"@{f}", headers=["Transfer-Encoding: chunked"])
    assert r.http_code == 200, r
    echo = r.json()
    want = body.replace(PH, REAL)
    assert echo["body"] == want
    h = hdrs(echo)
    assert h.get("content-length") == str(len(want)) and "transfer-encoding" not in h, h


def test_chunked_body_above_cap_forwarded_untouched(proxy_factory, https_upstream, ca_cert,
                                                    tmp_path):
    proxy = body_proxy(proxy_factory, https_upstream, 1024, oversize="forward")
    body = oversize_body() * 4
    f = tmp_path / "big.txt"
    f.write_text(body)
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, "/echo/bigchunk"),
                     cacert=ca_cert, data=f"@{f}", headers=["Transfer-Encoding: chunked"])
    assert r.http_code == 200, r
    assert r.json()["body_length"] == len(body)
    assert r.json()["body"] == body
    [rec] = inner_for(proxy, "/echo/bigchunk")
    assert trace(rec)["annotations"].get("body_truncated") is True, rec


SPECIAL = "s3cr/t+v&l=ue %x?#;"


def test_secret_needing_encoding_in_query_and_path(proxy_factory, https_upstream, ca_cert):
    """A real value with reserved characters is percent-encoded where it lands, so the upstream
    decodes exactly the secret and the rest of the query is not disturbed."""
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_query": True, "match_path": True}))],
        env={"E2E_SECRET": SPECIAL})
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port,
                           f"/echo/enc/{PH}?a=1&t={PH}&b=2"), cacert=ca_cert,
                     headers=[f"X-Token: {PH}"])
    assert r.http_code == 200, r
    echo = r.json()
    q = urllib.parse.parse_qsl(echo["query"], keep_blank_values=True)
    assert q == [("a", "1"), ("t", SPECIAL), ("b", "2")], echo["query"]
    assert urllib.parse.unquote(echo["path"]) == f"/echo/enc/{SPECIAL}", echo["raw_target"]
    assert hdrs(echo)["x-token"] == SPECIAL


def test_percent_encoded_placeholder_in_query(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_query": True}))], env={"E2E_SECRET": REAL})
    enc = urllib.parse.quote(PH, safe="").replace("_", "%5F")
    assert enc != PH
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port,
                           f"/echo/pq?x=%20&t={enc}"), cacert=ca_cert)
    assert r.http_code == 200, r
    assert urllib.parse.parse_qsl(r.json()["query"], keep_blank_values=True) == [("x", " "), ("t", REAL)]
    assert r.json()["query"].startswith("x=%20&"), r.json()["query"]


def test_repeated_header_values_all_swapped(proxy_factory, https_upstream, upstream_pki, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH}))], env={"E2E_SECRET": REAL})
    # (Repeated names kept adjacent: the proxy groups same-name field lines, which RFC 9110 §5.3
    # allows and which has nothing to do with the secrets transform.)
    hs = ["X-Before: 1", f"X-Multi: one {PH}", f"X-Multi: two {PH} {PH}", "X-Multi: three",
          f"Cookie: sid={PH}; a=b"]
    r = clients.curl(**via("tunnel", proxy, "allowed.test", https_upstream.port, "/echo/multi"),
                     cacert=ca_cert, headers=hs)
    assert r.http_code == 200, r
    d = direct(https_upstream, upstream_pki, "allowed.test", "/echo/multi",
               headers=[h.replace(PH, REAL) for h in hs])
    assert_same_request(r.json(), d.json())


def test_basic_auth_placeholder_as_username(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH}))], env={"E2E_SECRET": REAL})
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, "/echo/bu"),
                     cacert=ca_cert, extra=["-u", f"{PH}:x-oauth-basic"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["authorization"] == "Basic " + base64.b64encode(
        f"{REAL}:x-oauth-basic".encode()).decode()


def test_match_headers_none_disables_header_scan(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_headers": "none", "match_query": True}))],
        env={"E2E_SECRET": REAL})
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port, f"/echo/none?t={PH}"),
                     cacert=ca_cert, headers=[f"X-Token: {PH}"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["x-token"] == PH
    assert r.json()["query"] == f"t={REAL}"


def test_require_only_applies_to_bound_hosts(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test", "other.test"),
                                                  secrets_transform(env_entry(replace={
                                                      "proxy_value": PH, "require": True,
                                                      "match_body": True}))],
                  env={"E2E_SECRET": REAL})
    port = https_upstream.port
    r = clients.curl(**via("tunnel", proxy, "other.test", port, "/echo/free"), cacert=ca_cert)
    assert r.http_code == 200, r
    # The token only in the body satisfies require (match_body).
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/inbody"), cacert=ca_cert,
                     data=f"token={PH}")
    assert r.http_code == 200, r
    assert r.json()["body"] == f"token={REAL}"


def test_inject_replaces_repeated_client_values(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test"), secrets_transform(
        env_entry(inject={"header": "x-api-key", "formatter": "Bearer {{ .Value }}"}),
        env_entry(inject={"query_param": "key"}))], env={"E2E_SECRET": REAL})
    r = clients.curl(**via("https", proxy, "allowed.test", https_upstream.port,
                           "/echo/inj?key=a&z=1&key=b"), cacert=ca_cert,
                     headers=["X-Api-Key: one", "X-API-KEY: two"])
    assert r.http_code == 200, r
    h = r.json()["headers"]
    assert [(k, v) for k, v in h if k.lower() == "x-api-key"] == [("x-api-key", f"Bearer {REAL}")], h
    q = urllib.parse.parse_qsl(r.json()["query"])
    assert sorted(q) == [("key", REAL), ("z", "1")], q


def test_body_swap_on_kept_alive_connection(proxy_factory, https_upstream, ca_cert):
    """Rewritten bodies change Content-Length; the next request on the same client connection must
    still be framed correctly (also after an oversize body forwarded untouched)."""
    proxy = body_proxy(proxy_factory, https_upstream, 1024, oversize="forward")
    conn = clients.https_via_tunnel(proxy.addr("tunnel"), "allowed.test", https_upstream.port, ca_cert)
    big = oversize_body()
    sent = [f"a={PH}", big, f"short{PH}", "", big[:1024], f"{PH}" * 3]
    try:
        for i, body in enumerate(sent):
            conn.request("POST", f"/echo/ka/{i}", body=body.encode(),
                         headers={"Content-Type": "text/plain"})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, (i, resp.status, data[:200])
            echo = json.loads(data)
            want = body if len(body) > 1024 else body.replace(PH, REAL)
            assert echo["path"] == f"/echo/ka/{i}"
            assert echo["body"] == want, (i, echo["body"][:100])
    finally:
        conn.close()


def test_secret_with_crlf_is_never_written_into_a_header(proxy_factory, https_upstream, ca_cert):
    """A real value containing CR LF must not split a header (request smuggling / header
    injection): the request fails (502) and nothing reaches the upstream."""
    evil = "abc\r\nX-Evil: 1"
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test", "other.test"), secrets_transform(
        env_entry(replace={"proxy_value": PH, "match_query": True}),
        env_entry(var="E2E_EVIL2", inject={"header": "X-Inj", "formatter": "{{ .Value }}"},
                  host="other.test"),
    )], env={"E2E_SECRET": evil, "E2E_EVIL2": evil})
    port = https_upstream.port
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/crlf"), cacert=ca_cert,
                     headers=[f"X-Token: {PH}"])
    assert r.http_code == 502, r
    r = clients.curl(**via("tunnel", proxy, "other.test", port, "/echo/crlf2"), cacert=ca_cert)
    assert r.http_code == 502, r
    assert https_upstream.requests_for("/echo/crlf") == []
    # In the query the value is percent-encoded, which is safe.
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, f"/echo/crlfq?t={PH}"),
                     cacert=ca_cert)
    assert r.http_code == 200, r
    assert urllib.parse.parse_qs(r.json()["query"]) == {"t": [evil]}
    assert "x-evil" not in hdrs(r.json())
    for rec in proxy.audit_records():
        assert "X-Evil" not in json.dumps(rec)


def test_unavailable_inject_secret(proxy_factory, https_upstream, ca_cert):
    """Inject without require: an unavailable secret is skipped (annotated); with require: 403."""
    proxy = start(proxy_factory, https_upstream, [allowlist("allowed.test", "other.test"),
                                                  secrets_transform(
        env_entry(var="E2E_MISSING", inject={"header": "X-Key"}),
        env_entry(var="E2E_MISSING", inject={"header": "X-Key2", "require": True}, host="other.test"),
    )], env={})
    port = https_upstream.port
    r = clients.curl(**via("tunnel", proxy, "allowed.test", port, "/echo/skip"), cacert=ca_cert)
    assert r.http_code == 200, r
    assert "x-key" not in hdrs(r.json())
    [rec] = inner_for(proxy, "/echo/skip")
    assert trace(rec)["annotations"] == {"secret_unavailable": ["E2E_MISSING"]}
    r = clients.curl(**via("tunnel", proxy, "other.test", port, "/echo/req"), cacert=ca_cert)
    assert r.http_code == 403, r
    [rec] = inner_for(proxy, "/echo/req")
    assert rec["rejected_by"] == "secrets"
    ann = trace(rec)["annotations"]
    assert ann["reject_reason"] == "secret_unavailable" and ann["rejected"] == "E2E_MISSING"


def test_file_source_missing_then_created(proxy_factory, https_upstream, ca_cert, tmp_path):
    """A file that does not exist yet: with on_unavailable: reject placeholder requests are refused
    (never forwarded with the placeholder); after the file appears and SIGHUP, they are swapped.
    One trailing newline is not part of the value."""
    secret_file = tmp_path / "late_token"
    proxy = rotation_proxy(proxy_factory, https_upstream, secret_file, on_unavailable="reject")
    port = https_upstream.port
    r = clients.curl(**via("https", proxy, "allowed.test", port, "/echo/late1"), cacert=ca_cert,
                     headers=[f"X-Token: {PH}"])
    assert r.http_code == 403, r
    assert https_upstream.requests_for("/echo/late1") == []
    write_atomically(secret_file, "late-value-5555\n")
    os.kill(proxy.pid, signal.SIGHUP)
    seen = None
    for i in range(50):
        r = clients.curl(**via("https", proxy, "allowed.test", port, f"/echo/late2/{i}"),
                         cacert=ca_cert, headers=[f"X-Token: {PH}"])
        if r.http_code == 200:
            seen = hdrs(r.json())["x-token"]
            break
        time.sleep(0.1)
    assert seen == "late-value-5555", r


# --- 4. rotation through the file source ----------------------------------------------------------

def write_atomically(path, value):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(value)
    os.replace(tmp, path)


class Flow(threading.Thread):
    """Sends requests on one kept-alive connection through the HTTPS listener until stopped
    (bounded: max_requests or max_seconds), recording (status, value seen upstream, error)."""

    def __init__(self, proxy, port, ca_cert, max_requests=300, max_seconds=20.0):
        super().__init__(daemon=True)
        self.proxy, self.port, self.ca = proxy, port, ca_cert
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.results = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def _connect(self):
        return clients.https_via_listener(("127.0.0.1", self.proxy.https_port), "allowed.test",
                                          self.ca, host_header=f"allowed.test:{self.port}")

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        for i in range(self.max_requests):
            if self.stop_flag.is_set() or time.monotonic() > deadline:
                break
            # Every 10th request on a fresh connection, the rest kept alive.
            if conn is None or i % 10 == 0:
                if conn is not None:
                    conn.close()
                conn = self._connect()
            try:
                conn.request("GET", f"/echo/rot/{i}", headers={"X-Token": PH})
                resp = conn.getresponse()
                body = resp.read()
                seen = hdrs(json.loads(body)).get("x-token") if resp.status == 200 else None
                res = (resp.status, seen, None)
            except Exception as exc:  # noqa: BLE001 - any failure is a failed request
                res = (0, None, repr(exc))
                conn.close()
                conn = None
            with self.lock:
                self.results.append(res)
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def snapshot(self):
        with self.lock:
            return list(self.results)


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def rotation_proxy(proxy_factory, https_upstream, secret_file, ttl=None, on_unavailable=None):
    src = {"type": "file", "path": str(secret_file)}
    if ttl:
        src["ttl"] = ttl
    entry = {"source": src, "rules": [{"host": "allowed.test"}],
             "replace": {"proxy_value": PH, "match_headers": ["X-Token"]}}
    transform = secrets_transform(entry)
    if on_unavailable:
        transform["config"]["on_unavailable"] = on_unavailable
    return start(proxy_factory, https_upstream, [allowlist("allowed.test"), transform])


def check_rotation(flow, old, new):
    results = flow.snapshot()
    failed = [r for r in results if r[0] != 200 or r[2] is not None]
    assert not failed, f"{len(failed)} of {len(results)} requests failed during rotation: {failed[:5]}"
    seen = [r[1] for r in results]
    assert set(seen) <= {old, new}, set(seen)
    first_new = seen.index(new)
    assert first_new > 0, "no request was served with the old value before the rotation"
    assert all(v == new for v in seen[first_new:]), \
        f"old value served again after the new one: {seen}"
    assert len(seen) - first_new >= 5


@pytest.mark.timeout(60)
def test_rotation_via_file_source_and_sighup(proxy_factory, https_upstream, ca_cert, tmp_path):
    """Three clients keep sending while the file is rewritten (temp + rename) and SIGHUP is sent,
    then a burst of SIGHUPs without a change: no request fails, each client switches from the old
    value to the new one exactly once."""
    old, new = "rotate-old-value-1111", "rotate-new-value-2222"
    secret_file = tmp_path / "api_token"
    write_atomically(secret_file, old)
    proxy = rotation_proxy(proxy_factory, https_upstream, secret_file)
    flows = [Flow(proxy, https_upstream.port, ca_cert) for _ in range(3)]
    for f in flows:
        f.start()
    try:
        assert wait_for(lambda: all(len(f.snapshot()) >= 20 for f in flows), 10), \
            [f.snapshot()[-3:] for f in flows]
        write_atomically(secret_file, new)
        os.kill(proxy.pid, signal.SIGHUP)
        assert wait_for(lambda: all(any(r[1] == new for r in f.snapshot()) for f in flows), 5), \
            f"the new value never reached the upstream: {[f.snapshot()[-3:] for f in flows]}"
        for _ in range(5):
            os.kill(proxy.pid, signal.SIGHUP)
            time.sleep(0.05)
        counts = [len(f.snapshot()) for f in flows]
        assert wait_for(lambda: all(len(f.snapshot()) >= n + 20 for f, n in zip(flows, counts)), 10)
    finally:
        for f in flows:
            f.stop_flag.set()
        for f in flows:
            f.join(timeout=15)
    assert not any(f.is_alive() for f in flows)
    assert proxy.alive()
    for f in flows:
        check_rotation(f, old, new)
    # Annotation names the file source, never the values.
    total = sum(len(f.snapshot()) for f in flows)
    recs = proxy.wait_audit(total, predicate=lambda r: r["audit"]["path"].startswith("/echo/rot/"))
    swapped = [trace(r)["annotations"]["swapped"] for r in recs]
    assert len(swapped) == total
    assert all(s[0]["secret"] in ("api_token", str(secret_file)) for s in swapped), swapped[:3]
    logs = proxy.stderr_text() + proxy.audit_path.read_text()
    assert old not in logs and new not in logs


@pytest.mark.timeout(60)
def test_rotation_via_file_source_ttl(proxy_factory, https_upstream, ca_cert, tmp_path):
    old, new = "ttl-old-value-3333", "ttl-new-value-4444"
    secret_file = tmp_path / "ttl_token"
    write_atomically(secret_file, old)
    proxy = rotation_proxy(proxy_factory, https_upstream, secret_file, ttl="1s")
    flow = Flow(proxy, https_upstream.port, ca_cert)
    flow.start()
    try:
        assert wait_for(lambda: len(flow.snapshot()) >= 20, 10), flow.snapshot()
        write_atomically(secret_file, new)  # no signal: the ttl timer re-reads the file
        assert wait_for(lambda: any(r[1] == new for r in flow.snapshot()), 6), \
            f"the new value never reached the upstream: {flow.snapshot()[-5:]}"
        n = len(flow.snapshot())
        assert wait_for(lambda: len(flow.snapshot()) >= n + 20, 10)
    finally:
        flow.stop_flag.set()
        flow.join(timeout=15)
    assert not flow.is_alive()
    check_rotation(flow, old, new)
