"""HTTP/1.1 clients to HTTP/2 origins (issue 18): the proxy offers ALPN "h2,http/1.1" to TLS origins
whatever the client spoke (as Go's transport does), so an origin that speaks only h2 is reachable
by curl --http1.1, python requests and http.client through the MITM, and a worker's HTTP/1.1
clients share one HTTP/2 connection per origin. What the HTTP/1.1 client sees is ordinary
HTTP/1.1: Content-Length when known, else chunked; a cut transfer is cut, never a clean end.

Origins: `h2_upstream` (harness/h2_upstream.py, ALPN h2 only: it closes any connection that did
not pick h2, counting it in `non_h2`) and `https_upstream` (ALPN http/1.1 only).
"""
import concurrent.futures
import json
import os
import socket

import pytest
import requests

from harness import audit, clients
from harness.configs import allowlist_transform, secret_header_transform

pytestmark = pytest.mark.timeout(60)

MIB = 1 << 20


def start_for(proxy_factory, upstream, **kw):
    """A proxy whose HTTPS listener is on 127.0.0.1:<upstream.port> (see docs/testing.md)."""
    return proxy_factory.start(https_listen=f"127.0.0.1:{upstream.port}", **kw)


def curl_h1(p, upstream, path, listener="https", **kw):
    port = upstream.port
    if listener == "tunnel":
        route = {"proxy": p.tunnel_url}
    else:
        route = {"resolve": f"allowed.test:{port}:127.0.0.1"}
    extra = ["--http1.1", *kw.pop("extra", ())]
    return clients.curl(f"https://allowed.test:{port}{path}", extra=extra, **route, **kw)


def listener_conn(p, upstream, ca_cert):
    """An http.client connection to the HTTPS listener (SNI allowed.test), ALPN http/1.1."""
    return clients.https_via_listener(("127.0.0.1", upstream.port), "allowed.test", ca_cert)


def hdrs(echo):
    return {k.lower(): v for k, v in echo["headers"]}


def inner(p, path, n=1, timeout=5.0):
    return p.wait_audit(n, predicate=lambda r: r["audit"]["method"] != "CONNECT"
                        and r["audit"]["path"] == path, timeout=timeout)


# --- reachability, requests and responses ------------------------------------------------------

@pytest.mark.parametrize("listener", ["https", "tunnel"])
def test_curl_http11_reaches_an_h2_only_origin(proxy_factory, h2_upstream, ca_cert, listener):
    p = start_for(proxy_factory, h2_upstream)
    r = curl_h1(p, h2_upstream, "/echo/one?x=1", listener, cacert=ca_cert, method="POST", data="hello h2",
                headers=["X-Test: yes", "Content-Type: text/plain"])
    assert r.exit_code == 0 and r.http_code == 200, r
    assert r.info.get("http_version") == "1.1", r.info
    echo = r.json()
    assert echo["alpn"] == "h2" and h2_upstream.non_h2 == 0
    assert echo["method"] == "POST" and echo["path"] == "/echo/one" and echo["query"] == "x=1"
    assert echo["body"] == "hello h2"
    assert echo["authority"] == f"allowed.test:{h2_upstream.port}"
    assert hdrs(echo)["x-test"] == "yes"
    assert hdrs(echo)["content-length"] == "8"
    [rec] = inner(p, "/echo/one")
    audit.check_shape(rec)
    a = rec["audit"]
    assert a["status_code"] == 200 and a["action"] == "allow" and "error" not in a, rec
    if listener == "tunnel":
        assert rec["tunnel"]["target"] == f"allowed.test:{h2_upstream.port}", rec


def test_python_requests_through_the_tunnel(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    with requests.Session() as s:
        s.trust_env = False
        s.proxies = {"https": p.tunnel_url}
        url = f"https://allowed.test:{h2_upstream.port}"
        for i in range(3):  # one client connection, three exchanges
            r = s.post(f"{url}/echo/req{i}", data=b"x" * 1000, verify=str(ca_cert), timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["body_length"] == 1000
        r = s.get(f"{url}/status/418", verify=str(ca_cert), timeout=10)
        assert r.status_code == 418 and r.text == "status 418\n"
    assert len(h2_upstream.requests_for("/echo/req")) == 3


def test_chunked_request_body_goes_up_without_transfer_encoding(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    r = curl_h1(p, h2_upstream, "/echo/chunked", cacert=ca_cert, method="POST", data="chunked body",
                headers=["Transfer-Encoding: chunked"])
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["body"] == "chunked body"
    assert "transfer-encoding" not in hdrs(echo) and "content-length" not in hdrs(echo), echo["headers"]


def test_response_framing_for_the_http11_client(proxy_factory, h2_upstream, ca_cert):
    """Content-Length when the origin gave one, chunked otherwise; HEAD, 204, 304 and an empty
    END_STREAM body framed right; the connection carries every exchange."""
    start_for(proxy_factory, h2_upstream)
    conn = listener_conn(None, h2_upstream, ca_cert)
    try:
        def get(path, method="GET"):
            conn.request(method, path)
            resp = conn.getresponse()
            return resp, resp.read()

        resp, body = get("/bytes/5000")
        assert resp.status == 200 and resp.getheader("Content-Length") == "5000" and len(body) == 5000
        assert resp.getheader("Transfer-Encoding") is None
        resp, body = get("/stream?n=3&every=0.05")  # no content-length from the origin
        assert resp.getheader("Transfer-Encoding") == "chunked" and body.count(b"chunk") == 3
        resp, body = get("/bytes/5000", "HEAD")
        assert resp.status == 200 and resp.getheader("Content-Length") == "5000" and body == b""
        for code in (204, 304):
            resp, body = get(f"/status/{code}")
            assert resp.status == code and body == b""
            assert resp.getheader("Transfer-Encoding") is None
        resp, body = get("/empty")
        assert resp.status == 200 and body == b"" and resp.getheader("Content-Length") == "0"
        resp, body = get("/trailers")  # HTTP/1.1 drops the trailers, keeps the body
        assert resp.status == 200 and body == b"trailers follow\n"
        resp, body = get("/echo/last")
        assert resp.status == 200 and resp.getheader("Connection") != "close"
    finally:
        conn.close()
    assert h2_upstream.connections == 1


def test_large_bodies_both_ways(proxy_factory, h2_upstream, ca_cert, tmp_path):
    p = start_for(proxy_factory, h2_upstream)
    size = 20 * MIB
    r = curl_h1(p, h2_upstream, f"/bytes/{size}", cacert=ca_cert, output="/dev/null")
    assert r.exit_code == 0 and r.http_code == 200 and r.size_download == size, r
    big = tmp_path / "up.bin"
    big.write_bytes(os.urandom(size))
    for framing in ("Content-Length", "chunked"):
        hs = ["Content-Type: application/octet-stream", "Expect:"]
        if framing == "chunked":
            hs.append("Transfer-Encoding: chunked")
        r = curl_h1(p, h2_upstream, "/sink", cacert=ca_cert, method="POST", headers=hs,
                    extra=["--data-binary", f"@{big}"])
        assert r.http_code == 200 and r.json() == {"length": size}, (framing, r)
    recs = inner(p, "/sink", n=2)
    assert all(x["audit"]["status_code"] == 200 for x in recs), recs


def test_expect_continue_upload(proxy_factory, h2_upstream, ca_cert, tmp_path):
    p = start_for(proxy_factory, h2_upstream)
    body = tmp_path / "body"
    body.write_bytes(b"y" * 200000)
    r = curl_h1(p, h2_upstream, "/sink", cacert=ca_cert, method="POST", data=f"@{body}",
                headers=["Expect: 100-continue"])
    assert r.http_code == 200 and r.json() == {"length": 200000}, r
    [seen] = h2_upstream.heads_for("/sink")
    assert "expect" not in {k.lower() for k, _ in seen["headers"]}, seen


def test_hop_by_hop_fields_are_not_sent_as_h2_fields(proxy_factory, h2_upstream, ca_cert):
    start_for(proxy_factory, h2_upstream)
    conn = listener_conn(None, h2_upstream, ca_cert)
    try:
        conn.request("GET", "/echo/hop", headers={
            "Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5",
            "TE": "gzip", "Upgrade": "foo/1", "Proxy-Authorization": "Basic eDp5",
            "Proxy-Connection": "keep-alive", "X-Kept": "yes"})
        resp = conn.getresponse()
        echo = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200
    names = [k.lower() for k, _ in echo["headers"]]
    for hop in ("connection", "x-hop", "keep-alive", "te", "upgrade", "proxy-authorization",
                "proxy-connection", "transfer-encoding", "host"):
        assert hop not in names, (hop, echo["headers"])
    assert hdrs(echo)["x-kept"] == "yes"
    assert echo["authority"] == f"allowed.test:{h2_upstream.port}"
    assert [k for k, _ in echo["pseudo"]].count(":authority") == 1
    assert h2_upstream.protocol_errors == []


def test_te_trailers_is_kept(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    r = curl_h1(p, h2_upstream, "/echo/te", cacert=ca_cert, headers=["TE: trailers"])
    assert r.http_code == 200, r
    assert hdrs(r.json()).get("te") == "trailers"


# --- one shared connection; the origin's stream limit ------------------------------------------

def test_concurrent_http11_clients_share_one_h2_connection_per_worker(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)

    def one(i):
        return curl_h1(p, h2_upstream, f"/slow?s=0.5&i={i}", cacert=ca_cert)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert all(r.http_code == 200 and r.body == b"slow response\n" for r in results), results
    assert len(h2_upstream.requests_for("/slow")) == 16
    workers = os.cpu_count() or 1
    assert 1 <= h2_upstream.connections <= workers, (h2_upstream.connections, workers)


def test_origin_stream_limit_opens_another_connection(proxy_factory, h2_upstream_factory, ca_cert):
    origin = h2_upstream_factory(max_streams=2)
    p = start_for(proxy_factory, origin)

    def one(i):
        return curl_h1(p, origin, f"/slow?s=1&i={i}", cacert=ca_cert)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    assert all(r.http_code == 200 for r in results), (results, p.audit_records(), origin.resets, origin.protocol_errors)
    assert origin.protocol_errors == []
    assert origin.connections >= 2  # never more streams on one connection than the origin allows


# --- the origin's resets and deaths ------------------------------------------------------------

def test_origin_reset_mid_body_cuts_the_client(proxy_factory, h2_upstream, ca_cert):
    """The origin's RST_STREAM after a chunk: the client's chunked body never gets its last chunk,
    and its connection is closed (it cannot carry another request after a cut response)."""
    p = start_for(proxy_factory, h2_upstream)
    raw = socket.create_connection(("127.0.0.1", h2_upstream.port), timeout=10)
    tls = clients.tls_wrap(raw, "allowed.test", ca_cert)
    tls.sendall(f"GET /reset HTTP/1.1\r\nHost: allowed.test:{h2_upstream.port}\r\n\r\n".encode())
    got = b""
    for _ in range(1000):  # until the proxy closes the connection
        piece = tls.recv(65536)
        if not piece:
            break
        got += piece
    tls.close()
    assert got.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in got.lower(), got
    assert b"about to reset" in got and not got.endswith(b"0\r\n\r\n"), got
    [rec] = inner(p, "/reset")
    a = rec["audit"]
    assert a["status_code"] == 200 and a["action"] == "error", rec
    assert "upstream reset the stream (http2 error 2) after 15 response bytes" in rec["error"], rec


def test_origin_dying_mid_body_is_a_cut_transfer(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    r = curl_h1(p, h2_upstream, "/die", cacert=ca_cert)
    assert r.http_code == 200 and r.exit_code != 0, r  # 1000 of 100000 bytes: curl says so
    assert r.size_download == 1000, r
    [rec] = inner(p, "/die")
    assert rec["audit"]["action"] == "error", rec
    assert "closed the http2 connection after 1000 response bytes" in rec["error"], rec
    # The worker forgets the dead connection: the next request dials a new one.
    r = curl_h1(p, h2_upstream, "/echo/after", cacert=ca_cert)
    assert r.http_code == 200, r


# --- what still goes over HTTP/1.1 -----------------------------------------------------------

def test_origin_choosing_http11_keeps_its_keepalive_pool(proxy_factory, https_upstream, ca_cert):
    start_for(proxy_factory, https_upstream)
    conn = listener_conn(None, https_upstream, ca_cert)
    try:
        for i in range(3):
            conn.request("GET", f"/echo/ka{i}")
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            resp.read()
    finally:
        conn.close()
    assert https_upstream.connections == 1, https_upstream.connections


def test_switch_off_keeps_http11_clients_on_http11(proxy_factory, h2_upstream, https_upstream, ca_cert):
    """proxy.upstream_h2_for_http1: false: the h2-only origin is unreachable (502), the h1 one fine."""
    p = start_for(proxy_factory, h2_upstream, proxy_extra={"upstream_h2_for_http1": False})
    r = curl_h1(p, h2_upstream, "/echo/off", cacert=ca_cert)
    assert r.http_code == 502, r
    assert h2_upstream.non_h2 >= 1 and h2_upstream.requests_for("/echo/off") == []
    r = curl_h1(p, https_upstream, "/echo/off", "tunnel", cacert=ca_cert)
    assert r.http_code == 200, r


# --- the pipeline still runs ---------------------------------------------------------------------

def test_denied_host_never_dials_the_h2_origin(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream, domains=("other.test",))
    r = curl_h1(p, h2_upstream, "/echo/denied", cacert=ca_cert)
    assert r.http_code == 403, r
    assert h2_upstream.connections == 0


def test_secret_swapped_into_an_h2_request(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream, env={"E2E_SECRET": "real-secret-value"}, transforms=[
        allowlist_transform("allowed.test"), secret_header_transform("PLACEHOLDER")])
    r = curl_h1(p, h2_upstream, "/echo/secret", cacert=ca_cert, headers=["Authorization: Bearer PLACEHOLDER"])
    assert r.http_code == 200, r
    assert hdrs(r.json())["authorization"] == "Bearer real-secret-value"
