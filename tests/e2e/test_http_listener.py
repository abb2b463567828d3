"""The plain HTTP listener: Host-header routing and absolute-form forward-proxy requests."""
import socket

import pytest

from harness import audit, clients


def test_host_header_routing(proxy, http_upstream):
    port = http_upstream.port
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo?a=b",
                     headers=[f"Host: allowed.test:{port}"])
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["server"] == "http-upstream" and echo["tls"] is False
    assert echo["path"] == "/echo" and echo["query"] == "a=b"
    assert {k.lower(): v for k, v in echo["headers"]}["host"] == f"allowed.test:{port}"

    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    a = audit.check_shape(recs[0])
    assert a["host"] == f"allowed.test:{port}"
    assert a["path"] == "/echo"
    assert a["sni"] == ""
    assert a["mode"] == "mitm"
    assert a["action"] == "allow" and a["status_code"] == 200
    assert audit.first_transform(recs[0])["name"] == "allowlist"


def test_absolute_form_forward_proxy(proxy, http_upstream):
    port = http_upstream.port
    r = clients.curl(f"http://allowed.test:{port}/echo/abs",
                     proxy=f"http://127.0.0.1:{proxy.http_port}")
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["path"] == "/echo/abs"
    # The upstream gets origin-form, not the absolute URI.
    assert echo["raw_target"].startswith("/echo/abs"), echo
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["host"] == f"allowed.test:{port}"
    assert rec["audit"]["status_code"] == 200


def test_denied_host_is_403(proxy, http_upstream):
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo",
                     headers=[f"Host: denied.test:{http_upstream.port}"])
    assert r.http_code == 403, r
    assert r.body == b""
    assert http_upstream.connections == 0
    [rec] = proxy.wait_audit(1)
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 403
    assert rec["rejected_by"] == "allowlist"


def _raw(proxy, data: bytes) -> bytes:
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    try:
        sock.sendall(data)
        head = clients.read_head(sock)
        return head
    finally:
        sock.close()


def test_missing_host_is_400_and_audited(proxy):
    head = _raw(proxy, b"GET /echo HTTP/1.0\r\n\r\n")
    assert clients.status_of(head) == 400, head
    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    a = audit.check_shape(recs[0])
    assert a["status_code"] == 400


@pytest.mark.parametrize("path", ["/a/../echo", "/a/%2e%2e/echo", "/./echo"])
def test_dot_segments_are_400_and_audited(proxy, http_upstream, path):
    host = f"allowed.test:{http_upstream.port}"
    head = _raw(proxy, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert clients.status_of(head) == 400, head
    assert http_upstream.connections == 0
    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    assert recs[0]["audit"]["status_code"] == 400


def test_asterisk_form_options_is_400_and_audited(proxy, http_upstream):
    """`OPTIONS *` asks about the server itself and names no resource to forward. The Go proxy's
    HTTP runtime answers it 200 itself, unaudited; this proxy answers 400 and audits it (a
    deliberate difference, docs/compatibility.md): every request gets a record and a 200 the
    proxy made up would carry no policy verdict."""
    host = f"allowed.test:{http_upstream.port}"
    head = _raw(proxy, f"OPTIONS * HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert clients.status_of(head) == 400, head
    assert http_upstream.connections == 0
    [rec] = proxy.wait_audit(1)
    a = audit.check_shape(rec)
    assert a["method"] == "OPTIONS" and a["status_code"] == 400 and a["action"] == "reject"
