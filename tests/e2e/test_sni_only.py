"""tls.mode: sni-only (issue 4): the proxy reads the SNI and relays TLS untouched
to SNI:443, so the client sees the upstream's own certificate (no proxy CA needed)."""
import socket

import pytest

from harness import clients


@pytest.fixture
def upstream_443(upstream_factory):
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 443))
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.2:443 for the sni-only upstream: {e}")
    finally:
        s.close()
    return upstream_factory(host="127.0.0.2", port=443, tls=True)


def _sni_proxy(proxy_factory):
    return proxy_factory.start(tls_extra={"mode": "sni-only"})


def test_sni_only_https_listener_allowed(proxy_factory, upstream_443, upstream_pki):
    p = _sni_proxy(proxy_factory)
    port = p.https_port
    # Trust only the upstream's CA: the proxy must not terminate TLS.
    r = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                     cacert=upstream_pki.ca_path)
    assert r.exit_code == 0, r
    assert r.http_code == 200, r
    assert r.json()["server"] == "https-upstream"
    [rec] = p.wait_audit(1)
    a = rec["audit"]
    assert a["mode"] == "sni-only"
    assert a["host"] == "allowed.test" and a["sni"] == "allowed.test"
    assert a["method"] == "" and a["path"] == ""
    assert a["action"] == "allow" and a["status_code"] == 200


def test_sni_only_denied_is_closed_and_audited(proxy_factory, upstream_443, upstream_pki):
    p = _sni_proxy(proxy_factory)
    port = p.https_port
    r = clients.curl(f"https://denied.test:{port}/", resolve=f"denied.test:{port}:127.0.0.1",
                     cacert=upstream_pki.ca_path)
    assert r.exit_code != 0, r
    assert upstream_443.connections == 0
    [rec] = p.wait_audit(1)
    assert rec["audit"]["action"] == "reject"
    assert rec["audit"]["mode"] == "sni-only"
    assert rec["rejected_by"] == "allowlist"


def test_sni_only_via_connect_ignores_connect_port(proxy_factory, upstream_443, upstream_pki):
    p = _sni_proxy(proxy_factory)
    # The CONNECT names port 8443, but sni-only always dials SNI:443 (anti port-pivot).
    r = clients.curl("https://allowed.test:8443/echo", proxy=p.tunnel_url, cacert=upstream_pki.ca_path,
                     extra=["--connect-to", "allowed.test:8443:allowed.test:8443"])
    assert r.http_connect == 200, r
    assert r.exit_code == 0, r
    assert r.http_code == 200, r


def test_sni_only_garbage_hello_is_audited(proxy_factory):
    p = _sni_proxy(proxy_factory)
    with socket.create_connection(("127.0.0.1", p.https_port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello-not-tls")
        s.settimeout(10)
        assert s.recv(10) == b""
    [rec] = p.wait_audit(1)
    assert rec["audit"]["action"] == "reject"
    assert "client hello" in rec["error"]
