"""The HTTPS (MITM) listener: clients reach it by DNS/--resolve; upstream = Host header,
which must match the SNI (ports aside); leaves minted from the test CA. The proxy listens on
127.0.0.1:P, the upstream on 127.0.0.2:P."""
import json
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from harness import audit, certs, clients


def _url(host, port, path="/"):
    return dict(url=f"https://{host}:{port}{path}", resolve=f"{host}:{port}:127.0.0.1")


def test_allowed_host(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    r = clients.curl(**_url("allowed.test", port, "/echo?secret=abc"), cacert=ca_cert,
                     headers=["X-Client: 1"])
    assert r.exit_code == 0, r
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["server"] == "https-upstream" and echo["tls"] is True
    assert echo["path"] == "/echo" and echo["query"] == "secret=abc"
    headers = {k.lower(): v for k, v in echo["headers"]}
    assert headers["host"] == f"allowed.test:{port}"
    assert headers["x-client"] == "1"

    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    rec = recs[0]
    a = audit.check_shape(rec)
    assert a["host"] == f"allowed.test:{port}"
    assert a["method"] == "GET"
    assert a["path"] == "/echo", "the query string must never be logged"
    assert "secret=abc" not in json.dumps(rec)
    assert a["sni"] == "allowed.test"
    assert a["mode"] == "mitm"
    assert a["action"] == "allow" and a["status_code"] == 200
    assert a["remote_addr"].startswith("127.0.0.1:")
    assert rec["level"] == "INFO"
    tr = audit.first_transform(rec)
    assert tr["name"] == "allowlist" and tr["action"] == "allow"
    assert "annotations" not in tr
    assert "tunnel" not in rec and "rejected_by" not in rec and "error" not in rec


def test_denied_host(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    r = clients.curl(**_url("denied.test", port, "/echo"), cacert=ca_cert)
    assert r.http_code == 403, r
    assert r.body == b""
    assert r.info.get("content_type", "").startswith("text/plain"), r.info
    assert https_upstream.connections == 0

    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    rec = recs[0]
    a = audit.check_shape(rec)
    assert a["host"] == f"denied.test:{port}"
    assert a["sni"] == "denied.test"
    assert a["mode"] == "mitm"
    assert a["action"] == "reject" and a["status_code"] == 403
    assert rec["level"] == "WARN"
    assert rec["rejected_by"] == "allowlist"
    tr = audit.first_transform(rec)
    assert tr["name"] == "allowlist" and tr["action"] == "reject"


@pytest.mark.parametrize("front_host", ["other.test", "denied.test"])
def test_domain_fronting_is_400(proxy_factory, https_upstream, ca_cert, front_host):
    """SNI says allowed.test, Host says something else: 400 whatever the policy says of either."""
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}",
                                domains=["allowed.test", "other.test"])
    conn = clients.https_via_listener(("127.0.0.1", port), "allowed.test", ca_cert,
                                      host_header=f"{front_host}:{port}")
    resp, body = clients.get_once(conn, "/echo")
    assert resp.status == 400
    assert body == b"SNI and Host header mismatch\n"
    assert https_upstream.requests_for("/echo") == []
    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    a = audit.check_shape(recs[0])
    assert a["action"] == "reject" and a["status_code"] == 400
    assert a["sni"] == "allowed.test"


def test_host_port_is_not_compared_with_sni(proxy, https_upstream, ca_cert):
    """Host "allowed.test:P" with SNI "allowed.test" is not fronting."""
    port = https_upstream.port
    conn = clients.https_via_listener(("127.0.0.1", port), "allowed.test", ca_cert)
    resp, _ = clients.get_once(conn, "/echo")
    assert resp.status == 200


def test_leaf_certificate(proxy, https_upstream, ca_cert):
    """The leaf is minted for the SNI, signed by the proxy CA, ECDSA P-256, not a CA itself."""
    port = https_upstream.port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = clients.tls_wrap(raw, "allowed.test", ca_cert)  # verifies chain + hostname
    try:
        der = tls.getpeercert(binary_form=True)
    finally:
        tls.close()
    leaf = x509.load_der_x509_certificate(der)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["allowed.test"]
    assert leaf.issuer == certs.load_cert(ca_cert).subject
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert not bc.ca
    except x509.ExtensionNotFound:
        pass


def test_request_body_is_forwarded(proxy, https_upstream, ca_cert, tmp_path):
    port = https_upstream.port
    payload = ("x" * 100_000) + "end"
    f = tmp_path / "body.txt"
    f.write_text(payload)
    r = clients.curl(**_url("allowed.test", port, "/echo"), cacert=ca_cert, method="POST",
                     data=f"@{f}", headers=["Content-Type: text/plain"])
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["method"] == "POST"
    assert echo["body"] == payload


def test_hop_by_hop_request_headers_are_not_forwarded(proxy, https_upstream, ca_cert):
    # HTTP/1.1 on purpose: over HTTP/2 curl itself drops Connection (RFC 9113 §8.2.2).
    port = https_upstream.port
    r = clients.curl(**_url("allowed.test", port, "/echo"), cacert=ca_cert, extra=["--http1.1"],
                     headers=["Connection: keep-alive, X-Hop", "X-Hop: 1",
                              "Proxy-Authorization: Basic Zm9vOmJhcg==", "X-End-To-End: 2"])
    assert r.http_code == 200, r
    names = {k.lower() for k, _ in r.json()["headers"]}
    assert "x-end-to-end" in names
    assert "x-hop" not in names
    assert "proxy-authorization" not in names


def test_upstream_status_and_headers_pass_through(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    r = clients.curl(**_url("allowed.test", port, "/status/418"), cacert=ca_cert)
    assert r.http_code == 418, r
    assert r.body == b"status 418\n"
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["status_code"] == 418 and rec["audit"]["action"] == "allow"


def test_chunked_response_streams_exactly(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    n = 10 * 1024 * 1024 + 7
    r = clients.curl(**_url("allowed.test", port, f"/bytes/{n}?chunked=1"), cacert=ca_cert,
                     output="/dev/null")
    assert r.http_code == 200, r
    assert r.size_download == n
