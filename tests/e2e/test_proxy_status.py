"""Proxy-Status (RFC 9209): every response the proxy makes itself says why, so a client (an agent)
can tell a policy denial from a failing origin or a revoked credential (README.md, "Proxy-Status:
why the proxy answered"). Each check parses the field the way a client library would, as an
RFC 8941 List whose one member is the token `iron-proxy` with an `error` token parameter (an
RFC 9209 error type) and a `details` string. With `proxy.deny_body: reason` the body says the same
in one plain-text line; by default a denial's body stays empty, as in the Go proxy."""
import os
import socket
import tempfile
from pathlib import Path

import pytest
import requests

from harness import audit, clients, yamlgen
from harness.configs import OMIT
from harness.proxy import run_binary
from harness.structured_fields import Token, parse_list

CURL_MAX = 15
DENIED_BY_ALLOWLIST = "host not in allowlist: denied.test"


# --- helpers ----------------------------------------------------------------------------------------

def fetch(url, **kw):
    """curl once; returns (CurlResult, [(lowercase name, value)] of the last response head)."""
    fd, path = tempfile.mkstemp(prefix="curl-head-")
    os.close(fd)
    try:
        r = clients.curl(url, extra=list(kw.pop("extra", ())) + ["-D", path], max_time=CURL_MAX, **kw)
        text = Path(path).read_bytes().decode("latin-1")
    finally:
        Path(path).unlink()
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return r, _fields(blocks[-1] if blocks else "")


def _fields(head: str):
    out = []
    for line in head.replace("\r\n", "\n").split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.strip().lower(), value.strip()))
    return out


def values(headers, name):
    return [v for k, v in headers if k == name.lower()]


def raw_exchange(addr, request: bytes, timeout=10.0):
    """Send raw bytes, read the whole response (the proxy closes after these errors)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(request)
        s.settimeout(timeout)
        data = b""
        while len(data) < 65536:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return clients.status_of(head), _fields(head.decode("latin-1")), body


def proxy_status(field_values, error, details_has=None):
    """The Proxy-Status field parses as an sf-list with our one member; returns its params."""
    assert field_values, "no Proxy-Status field in the response"
    members = parse_list(", ".join(field_values))
    assert len(members) == 1, members
    m = members[0]
    assert isinstance(m.value, Token) and m.value == "iron-proxy", m
    assert isinstance(m.params.get("error"), Token), m
    assert m.params["error"] == error, m
    details = m.params.get("details")
    assert isinstance(details, str) and details, m
    if details_has is not None:
        assert details_has in details, m
    return m.params


def only_inner(proxy, n):
    recs = proxy.wait_audit(n)
    inner = audit.inner_records(recs)
    assert len(inner) == 1, recs
    audit.check_shape(inner[0])
    return inner[0]


def closed_port(host="127.0.0.2"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


# --- policy denials (403) -------------------------------------------------------------------------

def test_allowlist_denial_on_the_plain_listener(proxy_factory):
    proxy = proxy_factory.start()
    r, head = fetch("http://denied.test/x", proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 403, r
    assert r.body == b"", "a denial's body stays empty by default (as the Go proxy)"
    proxy_status(values(head, "Proxy-Status"), "http_request_denied", DENIED_BY_ALLOWLIST)
    rec = only_inner(proxy, 1)
    assert rec["audit"]["action"] == "reject" and rec["rejected_by"] == "allowlist", rec
    # The audit record already carried the reason: the deciding transform's annotation.
    assert audit.first_transform(rec)["annotations"]["reason"] == "host not in allowlist", rec


def test_allowlist_denial_seen_by_python_requests(proxy_factory):
    proxy = proxy_factory.start()
    url = f"http://127.0.0.1:{proxy.http_port}"
    r = requests.get("http://denied.test/x", proxies={"http": url}, timeout=10)
    assert r.status_code == 403
    assert r.content == b""
    proxy_status([r.headers["Proxy-Status"]], "http_request_denied", DENIED_BY_ALLOWLIST)


@pytest.mark.parametrize("version", ["http1.1", "http2"])
def test_allowlist_denial_through_mitm(proxy_factory, ca_cert, version):
    proxy = proxy_factory.start()
    port = proxy.https_port
    r, head = fetch(f"https://denied.test:{port}/x", resolve=f"denied.test:{port}:127.0.0.1",
                    cacert=ca_cert, extra=[f"--{version}"])
    assert r.http_code == 403, r
    assert r.info.get("http_version") == ("2" if version == "http2" else "1.1"), r.info
    assert r.body == b""
    proxy_status(values(head, "Proxy-Status"), "http_request_denied", DENIED_BY_ALLOWLIST)


def test_refused_connect_says_why(proxy_factory):
    proxy = proxy_factory.start()
    sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), "denied.test:443")
    sock.close()
    assert status == 403, head
    proxy_status(values(_fields(head.decode("latin-1")), "Proxy-Status"), "http_request_denied",
                 DENIED_BY_ALLOWLIST)


def test_non_connect_on_the_tunnel_listener_says_why(proxy_factory):
    proxy = proxy_factory.start()
    status, head, _ = raw_exchange(proxy.addr("tunnel"), b"PUT /x HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    assert status == 405, head
    proxy_status(values(head, "Proxy-Status"), "http_request_error", "only CONNECT")


def test_secret_header_values_never_reach_the_reason(proxy_factory):
    proxy = proxy_factory.start(proxy_extra={"deny_body": "reason"})
    r, head = fetch("http://denied.test/x", proxy=f"http://127.0.0.1:{proxy.http_port}",
                    headers=["Authorization: Bearer sk-very-secret-123", "X-Why: sk-very-secret-123"])
    assert r.http_code == 403, r
    field = " ".join(values(head, "Proxy-Status"))
    assert "sk-very-secret" not in field and b"sk-very-secret" not in r.body, (field, r.body)


# --- upstream failures (502, 504, 508) ------------------------------------------------------------

def test_deny_cidr_is_destination_ip_prohibited(proxy_factory, http_upstream):
    proxy = proxy_factory.start(domains=["*"], deny_cidrs=OMIT)  # defaults: 127.0.0.0/8 denied
    r, head = fetch(f"http://allowed.test:{http_upstream.port}/echo",
                    proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 502, r
    assert r.body == b"bad gateway\n"
    proxy_status(values(head, "Proxy-Status"), "destination_ip_prohibited", "denied by upstream_deny_cidrs")
    assert http_upstream.requests_for("/echo") == []


def test_dns_failure_is_dns_error_with_rcode(proxy_factory):
    proxy = proxy_factory.start(domains=["nxdomain.test"])
    r, head = fetch("http://nxdomain.test/", proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 502, r
    params = proxy_status(values(head, "Proxy-Status"), "dns_error", "nxdomain.test")
    assert params.get("rcode") == "NXDOMAIN", params


def test_refused_connection_is_connection_refused(proxy_factory):
    port = closed_port()
    proxy = proxy_factory.start()
    r, head = fetch(f"http://allowed.test:{port}/", proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 502, r
    proxy_status(values(head, "Proxy-Status"), "connection_refused", "connection refused")


def test_response_header_timeout_is_http_response_timeout(proxy_factory, http_upstream):
    proxy = proxy_factory.start(proxy_extra={"upstream_response_header_timeout": "1s"})
    r, head = fetch(f"http://allowed.test:{http_upstream.port}/slow?s=3",
                    proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 504, r
    proxy_status(values(head, "Proxy-Status"), "http_response_timeout")


def test_untrusted_origin_certificate_is_tls_certificate_error(proxy_factory, https_upstream, ca_cert):
    proxy = proxy_factory.start(upstream_ca=False)
    r, head = fetch(f"https://allowed.test:{https_upstream.port}/echo", proxy=proxy.tunnel_url,
                    cacert=ca_cert)
    assert r.http_code == 502, r
    proxy_status(values(head, "Proxy-Status"), "tls_certificate_error", "certificate verify failed")


def test_request_to_the_proxy_itself_is_proxy_loop_detected(proxy_factory):
    proxy = proxy_factory.start()
    r, head = fetch(f"http://loop.test:{proxy.http_port}/", proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 508, r
    proxy_status(values(head, "Proxy-Status"), "proxy_loop_detected", "loop detected")


# --- malformed requests (400) ---------------------------------------------------------------------

def test_malformed_request_is_http_request_error(proxy_factory):
    proxy = proxy_factory.start()
    status, head, _ = raw_exchange(
        proxy.addr("http"), b"GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: other.test\r\n\r\n")
    assert status == 400, head
    proxy_status(values(head, "Proxy-Status"), "http_request_error", "multiple Host")


def test_plain_http_on_the_https_listener_says_why(proxy_factory):
    proxy = proxy_factory.start()
    status, head, body = raw_exchange(proxy.addr("https"), b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    assert status == 400, head
    assert body == b"Client sent an HTTP request to an HTTPS server.\n"
    proxy_status(values(head, "Proxy-Status"), "http_request_error", "HTTPS server")


# --- proxy.deny_body ------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["http1.1", "http2"])
def test_deny_body_reason_puts_the_reason_in_the_body(proxy_factory, ca_cert, version):
    proxy = proxy_factory.start(proxy_extra={"deny_body": "reason"})
    port = proxy.https_port
    r, head = fetch(f"https://denied.test:{port}/x", resolve=f"denied.test:{port}:127.0.0.1",
                    cacert=ca_cert, extra=[f"--{version}"])
    assert r.http_code == 403, r
    assert r.body == f"iron-proxy: {DENIED_BY_ALLOWLIST}\n".encode(), r
    assert values(head, "Content-Type")[0].startswith("text/plain"), head
    proxy_status(values(head, "Proxy-Status"), "http_request_denied", DENIED_BY_ALLOWLIST)


def test_deny_body_reason_explains_an_upstream_failure(proxy_factory):
    proxy = proxy_factory.start(domains=["nxdomain.test"], proxy_extra={"deny_body": "reason"})
    r, head = fetch("http://nxdomain.test/", proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 502, r
    assert r.body.startswith(b"iron-proxy: ") and b"no such host" in r.body, r
    assert r.body.count(b"\n") == 1 and r.body.endswith(b"\n"), r
    proxy_status(values(head, "Proxy-Status"), "dns_error")


def test_deny_body_unknown_value_is_a_config_error(bed, tmp_path):
    text = yamlgen.dump({
        "dns": {"enabled": False, "upstream_resolver": bed.dns_addr},
        "proxy": {"http_listen": "127.0.0.1:0", "https_listen": "127.0.0.1:0", "tunnel_listen": "127.0.0.1:0",
                  "deny_body": "verbose"},
        "tls": {"ca_cert": str(bed.ca_cert), "ca_key": str(bed.ca_key)},
        "metrics": {"listen": "127.0.0.1:0"},
        "transforms": [{"name": "allowlist", "config": {"domains": ["allowed.test"]}}],
    })
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    cp = run_binary(["-check", "-config", str(path)])
    assert cp.returncode != 0, cp.stdout
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "deny_body" in l)
    assert f"bad.yaml:{line}:" in cp.stderr, cp.stderr
    assert "proxy.deny_body" in cp.stderr and '"verbose"' in cp.stderr, cp.stderr
