"""Canary (issue 3 acceptance): run a representative mix of secret-bearing traffic through every
listener with a distinctive real secret value, then assert the value appears in no byte of the
proxy's stdout, stderr, audit file, other files it wrote, or anything returned to the client —
while the upstream did receive it (so the test fails if swapping silently stopped).

Only non-echo upstream endpoints are used for swapped requests: /echo would reflect the (correctly
swapped) secret back to the client, which is the upstream's doing, not a proxy leak.
"""
import base64
import json
import os
import signal
import socket
import time

import pytest

from harness import clients

CANARY = "CANARY-9f3c1e7a-real-secret"
CANARY_FILE = CANARY + "-file"
CANARY_ROTATED = CANARY + "-rotated"
PH = "IRONSH_PROXY_canary-token"
PH_FILE = "IRONSH_PROXY_canary-file"
PH_REQ = "IRONSH_PROXY_canary-required"


def forbidden_patterns():
    """Byte strings any of which would betray the canary: the raw value, its distinctive core,
    hex, and base64 at every alignment (Basic credentials, base64 formatter)."""
    pats = {CANARY.encode(), b"9f3c1e7a", CANARY.encode().hex().encode(),
            CANARY.encode().hex().upper().encode()}
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + CANARY.encode())
        start = 4 if k else 0        # the first quantum mixes prefix bytes
        inner = enc[start:-4]        # the last quantum may mix padding / following bytes
        assert len(inner) >= 24
        pats.add(inner)
        pats.add(base64.urlsafe_b64encode(b"\0" * k + CANARY.encode())[start:-4])
    return pats


FORBIDDEN = forbidden_patterns()


def leaks(data: bytes):
    return [p for p in FORBIDDEN if p in data]


def assert_clean(what, data: bytes):
    found = leaks(data)
    if found:
        i = min(data.find(p) for p in found)
        raise AssertionError(f"canary leaked into {what}: patterns {found!r} near "
                             f"{data[max(0, i - 200):i + 200]!r}")


def transforms(secret_file):
    env = {"type": "env", "var": "CANARY_SECRET"}
    bound = [{"host": "allowed.test"}]
    return [
        {"name": "allowlist", "config": {"domains": ["allowed.test", "other.test", "unreach.test"]}},
        {"name": "secrets", "config": {"secrets": [
            {"source": env, "rules": bound,
             "replace": {"proxy_value": PH, "match_headers": [], "match_query": True,
                         "match_path": True, "match_body": True}},
            {"source": env, "rules": [{"host": "allowed.test", "paths": ["/inject/*"]}],
             "inject": {"header": "X-Injected", "formatter": "Token {{ .Value }}"}},
            {"source": env, "rules": [{"host": "allowed.test", "paths": ["/inject/*"]}],
             "inject": {"header": "X-Basic", "formatter": 'Basic {{ base64 "x-credential:" .Value }}'}},
            {"source": env, "rules": [{"host": "allowed.test", "paths": ["/inject/*"]}],
             "inject": {"query_param": "ck"}},
            {"source": {"type": "file", "path": str(secret_file)}, "rules": bound,
             "replace": {"proxy_value": PH_FILE, "match_headers": ["X-File-Token"]}},
            {"source": env, "rules": [{"host": "unreach.test"}],
             "replace": {"proxy_value": PH_REQ, "match_headers": ["Authorization"], "require": True}},
        ]}},
    ]


class Client:
    """Runs curl and keeps every byte the client received (headers via -D, body)."""

    def __init__(self, tmp_path, ca_cert):
        self.tmp = tmp_path / "client"
        self.tmp.mkdir()
        self.ca = ca_cert
        self.received = []  # (label, bytes)
        self.n = 0

    def curl(self, label, url, **kw):
        self.n += 1
        hfile = self.tmp / f"h{self.n}"
        extra = list(kw.pop("extra", ())) + ["-D", str(hfile)]
        r = clients.curl(url, cacert=self.ca, extra=extra, **kw)
        head = hfile.read_bytes() if hfile.exists() else b""
        self.received.append((label, head + b"\n" + r.body))
        self.received.append((label + " (curl stderr)", r.stderr.encode()))
        return r

    def raw(self, label, data: bytes):
        self.received.append((label, data))


def sent_to(upstream, path_prefix):
    recs = upstream.requests_for(path_prefix)
    assert recs, f"upstream never received {path_prefix}"
    return json.dumps(recs)


@pytest.mark.timeout(120)
def test_canary_never_leaks(proxy_factory, upstream_factory, https_upstream, http_upstream, ca_cert,
                            tmp_path, tmp_path_factory):
    secret_dir = tmp_path_factory.mktemp("canary-secret")  # outside the proxy's workdir
    secret_file = secret_dir / "canary_file"
    secret_file.write_text(CANARY_FILE)
    env = {"CANARY_SECRET": CANARY}
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}", transforms=transforms(secret_file),
                                env=env, log_level="debug",
                                proxy_extra={"max_request_body_bytes": 4096})
    # The second proxy writes its audit records to stderr (no audit_path): both sinks are checked.
    fwd = proxy_factory.start(https_listen="127.0.0.1:0", transforms=transforms(secret_file), env=env,
                              log_level="debug", audit=False,
                              proxy_extra={"max_request_body_bytes": 1024, "oversize_body": "forward"})
    c = Client(tmp_path, ca_cert)
    small_body = tmp_path / "small.txt"
    small_body.write_text(f"payload={PH}&more=1")
    big_body = tmp_path / "big.txt"
    big_body.write_text(PH + "y" * 8000 + PH)
    closed = socket.socket()
    closed.bind(("127.0.0.2", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # bound then closed: nothing listens there

    def https_routes(tag):
        """(label, curl kwargs) for the tunnel and the HTTPS listener."""
        return [
            (f"tunnel {tag}", dict(proxy=proxy.tunnel_url), f"https://allowed.test:{port}"),
            (f"https {tag}", dict(resolve=f"allowed.test:{port}:127.0.0.1"), f"https://allowed.test:{port}"),
        ]

    for label, kw, base in https_routes("mix"):
        lt = label.split()[0]
        r = c.curl(label, f"{base}/c/{lt}/plain", **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/hdr", headers=[f"Authorization: Bearer {PH}"], **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/custom", headers=[f"X-Custom: {PH}"], **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/query?t={PH}&x=1", **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/basic", extra=["-u", f"user:{PH}"], **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/path/{PH}/x", **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/body", data=f"@{small_body}", **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/bigbody", data=f"@{big_body}", headers=[f"X-Custom: {PH}"], **kw)
        assert r.http_code == 413, r
        r = c.curl(label, f"{base}/inject/{lt}?a=1", **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/c/{lt}/file", headers=[f"X-File-Token: {PH_FILE}"], **kw)
        assert r.http_code == 200, r
        r = c.curl(label, f"{base}/status/500", headers=[f"Authorization: Bearer {PH}"], **kw)
        assert r.http_code == 500, r
        r = c.curl(label, f"{base}/bytes/100", headers=[f"Authorization: Bearer {PH}"], **kw)
        assert r.http_code == 200, r

    # SOCKS5 on the tunnel listener.
    r = c.curl("socks5 hdr", f"https://allowed.test:{port}/c/socks/hdr?t={PH}",
               proxy=f"socks5h://127.0.0.1:{proxy.tunnel_port}",
               headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r

    # Unbound host: placeholder untouched; denied host; require without token.
    r = c.curl("tunnel other", f"https://other.test:{port}/c/other?t={PH}", proxy=proxy.tunnel_url,
               headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r
    r = c.curl("tunnel denied", f"https://denied.test:{port}/c/denied?t={PH}", proxy=proxy.tunnel_url,
               headers=[f"Authorization: Bearer {PH}"])
    assert r.http_connect == 403, r
    r = c.curl("https denied", f"https://denied.test:{port}/c/denied?t={PH}",
               resolve=f"denied.test:{port}:127.0.0.1", headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 403, r
    r = c.curl("tunnel require", f"https://unreach.test:{port}/c/require", proxy=proxy.tunnel_url,
               headers=["Authorization: Bearer something-else"])
    assert r.http_code == 403, r

    # Upstream errors with swapped values in flight (502): refused port via tunnel and plain HTTP.
    r = c.curl("tunnel refused", f"https://allowed.test:{closed_port}/c/refused/{PH}?t={PH}",
               proxy=proxy.tunnel_url, headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 502, r
    r = c.curl("http refused", f"http://127.0.0.1:{proxy.http_port}/c/refused/{PH}?t={PH}",
               headers=[f"Host: allowed.test:{closed_port}", f"Authorization: Bearer {PH}"])
    assert r.http_code == 502, r

    # Plain HTTP listener (Host routing and absolute-form).
    hp = http_upstream.port
    hbase = f"http://127.0.0.1:{proxy.http_port}"
    host = [f"Host: allowed.test:{hp}"]
    for path, extra_kw, status in [
        ("/h/plain", {}, 200),
        ("/h/hdr", {"headers": host + [f"Authorization: Bearer {PH}", f"X-Custom: {PH}"]}, 200),
        (f"/h/query?t={PH}", {}, 200),
        (f"/h/path/{PH}", {}, 200),
        ("/h/basic", {"extra": ["-u", f"user:{PH}"]}, 200),
        ("/h/body", {"data": f"@{small_body}"}, 200),
        ("/h/bigbody", {"data": f"@{big_body}"}, 413),
        ("/inject/h", {}, 200),
    ]:
        kw = {"headers": host}
        kw.update(extra_kw)
        r = c.curl(f"http {path}", hbase + path, **kw)
        assert r.http_code == status, (path, r)
    r = c.curl("http absolute", f"http://allowed.test:{hp}/h/abs?t={PH}",
               proxy=f"http://127.0.0.1:{proxy.http_port}", headers=[f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r

    # Rotate the file secret (SIGHUP), then use it again.
    tmp = secret_file.with_name("canary_file.tmp")
    tmp.write_text(CANARY_ROTATED)
    os.replace(tmp, secret_file)
    os.kill(proxy.pid, signal.SIGHUP)
    os.kill(fwd.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = c.curl("tunnel rotated", f"https://allowed.test:{port}/c/rotated",
                   proxy=proxy.tunnel_url, headers=[f"X-File-Token: {PH_FILE}"])
        assert r.http_code == 200, r
        if CANARY_ROTATED in json.dumps(https_upstream.requests[-1]):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("rotated file secret never reached the upstream")

    # The oversize-forward proxy: body forwarded untouched (placeholder), headers swapped.
    r = c.curl("fwd bigbody", f"https://allowed.test:{port}/c/fwd/bigbody", proxy=fwd.tunnel_url,
               data=f"@{big_body}", headers=[f"X-Custom: {PH}"])
    assert r.http_code == 200, r
    r = c.curl("fwd hdr", f"http://127.0.0.1:{fwd.http_port}/h/fwd",
               headers=[f"Host: allowed.test:{hp}", f"Authorization: Bearer {PH}"])
    assert r.http_code == 200, r
    r = c.curl("fwd inject", f"https://allowed.test:{port}/inject/fwd", proxy=fwd.tunnel_url)
    assert r.http_code == 200, r

    # --- the upstream did get the real value where the placeholders were ----------------------
    for lt in ("tunnel", "https"):
        for what in ("hdr", "custom", "query", "path", "body", "file"):
            assert CANARY in sent_to(https_upstream, f"/c/{lt}/{what}"), (lt, what)
        basic = "Basic " + base64.b64encode(f"user:{CANARY}".encode()).decode()
        assert basic in sent_to(https_upstream, f"/c/{lt}/basic")
        inj = json.loads(sent_to(https_upstream, f"/inject/{lt}"))[0]
        h = {k.lower(): v for k, v in inj["headers"]}
        assert h["x-injected"] == f"Token {CANARY}"
        assert h["x-basic"] == "Basic " + base64.b64encode(f"x-credential:{CANARY}".encode()).decode()
        assert inj["query"] == f"a=1&ck={CANARY}"
        assert https_upstream.requests_for(f"/c/{lt}/bigbody") == []
    assert sent_to(https_upstream, "/c/socks/hdr").count(CANARY) == 3  # header, raw_target, query
    assert CANARY not in sent_to(https_upstream, "/c/other")
    assert PH in sent_to(https_upstream, "/c/other")
    assert CANARY in sent_to(https_upstream, "/status/500")
    for what in ("hdr", "query", "path", "basic", "body", "abs"):
        rec = sent_to(http_upstream, f"/h/{what}")
        assert CANARY in rec or base64.b64encode(f"user:{CANARY}".encode()).decode() in rec, what
    assert CANARY in sent_to(http_upstream, "/inject/h")
    fwd_rec = json.loads(sent_to(https_upstream, "/c/fwd/bigbody"))[0]
    assert fwd_rec["body"] == big_body.read_text()
    assert {k.lower(): v for k, v in fwd_rec["headers"]}["x-custom"] == CANARY
    assert CANARY in sent_to(http_upstream, "/h/fwd")
    assert CANARY in sent_to(https_upstream, "/inject/fwd")

    # --- and nothing the proxy wrote or returned contains it ------------------------------------
    n_audit = len(proxy.audit_records())
    assert n_audit >= 40, n_audit  # every request above was audited
    for p in (proxy, fwd):
        p.stop()
    assert fwd.audit_path is None and len(fwd.audit_records()) >= 3
    for p in (proxy, fwd):
        assert_clean(f"{p.name} stderr", p.stderr_text().encode())
        assert_clean(f"{p.name} stdout", p.stdout_text().encode())
        if p.audit_path is not None:
            assert_clean(f"{p.name} audit file", p.audit_path.read_bytes())
            text = p.audit_path.read_text()
        else:
            text = p.stderr_text()
        # Sanity: the audit records do name the swaps — the scan looked at real data.
        assert '"swapped"' in text and "CANARY_SECRET" in text and '"injected"' in text, p.name
    # Every file in the proxies' working directory (configs, logs, audit, anything else).
    for root, _dirs, files in os.walk(tmp_path):
        for name in files:
            path = os.path.join(root, name)
            if path.startswith(str(c.tmp)):
                continue  # the client's own header dumps are checked below
            with open(path, "rb") as f:
                assert_clean(path, f.read())
    for label, data in c.received:
        assert_clean(f"client response ({label})", data)
