"""HTTP/2 through the MITM (issue 5): the proxy offers ALPN "h2,http/1.1" to TLS clients on the
HTTPS listener and inside CONNECT / SOCKS5 tunnels, and "h2,http/1.1" to the origin, translating
to HTTP/1.1 when the origin doesn't pick h2. Every h2 stream is one exchange through the pipeline
and one audit record.

Origins: `h2_upstream` (harness/h2_upstream.py, ALPN h2 only) and `https_upstream`
(harness/upstream.py, ALPN http/1.1 only); tests parametrized over `origin` run against both.
Clients: curl --http2, nghttp (several streams on one connection), and harness/h2_client.py for
trailers, resets, flow control and deliberately malformed requests (RFC 9113 §8.2).
"""
import json
import time

import h2.exceptions

import pytest

from harness import audit, clients
from harness.configs import allowlist_transform, secret_header_transform
from harness.h2_client import MALFORMED_HEADERS, PROTOCOL_ERROR, SMUGGLE_BODY, H2Client, assert_rejected
from harness.h2_upstream import H2UpstreamServer
from harness.rss import RssSampler
from harness.upstream import bind_paired

GIB = 1 << 30
MAX_GROWTH_KIB = 32 * 1024

# Bounded even when pytest runs without --timeout (the 1 GiB transfers get 120 s each).
pytestmark = pytest.mark.timeout(60)


# --- helpers ------------------------------------------------------------------------------------

@pytest.fixture(params=["h2", "h1"], ids=["h2-origin", "h1-origin"])
def origin(request):
    """The origin server: h2-only, or HTTP/1.1-only (the proxy must translate)."""
    return request.getfixturevalue("h2_upstream" if request.param == "h2" else "https_upstream")


def is_h2(upstream):
    return isinstance(upstream, H2UpstreamServer)


def start_for(proxy_factory, upstream, **kw):
    """A proxy whose HTTPS listener is on 127.0.0.1:<upstream.port> (see docs/testing.md)."""
    return proxy_factory.start(https_listen=f"127.0.0.1:{upstream.port}", **kw)


def curl_h2(url, *, proxy=None, listener_resolve=None, extra=(), **kw):
    return clients.curl(url, proxy=proxy, resolve=listener_resolve, extra=["--http2", *extra], **kw)


def via(listener, proxy, host, port):
    """curl kwargs reaching https://host:port through the HTTPS listener or the tunnel."""
    if listener == "tunnel":
        return {"proxy": proxy.tunnel_url}
    if listener == "socks5":
        return {"proxy": f"socks5h://127.0.0.1:{proxy.tunnel_port}"}
    return {"listener_resolve": f"{host}:{port}:127.0.0.1"}


def h2_client(proxy, listener, port, cafile, sni="allowed.test", **kw) -> H2Client:
    """An HTTP/2 connection to the proxy (HTTPS listener, or CONNECT allowed.test:port)."""
    if listener == "tunnel":
        return H2Client.via_tunnel(proxy.addr("tunnel"), f"allowed.test:{port}", sni, cafile, **kw)
    return H2Client.connect(("127.0.0.1", port), sni, cafile, **kw)


def hdrs(echo):
    return {k.lower(): v for k, v in echo["headers"]}


def authority_seen(echo):
    """What the origin was told the authority is: :authority (h2) or Host (HTTP/1.1)."""
    return echo.get("authority") or hdrs(echo).get("host")


def inner(proxy, path, n=1, timeout=5.0):
    return proxy.wait_audit(n, predicate=lambda r: r["audit"]["method"] != "CONNECT"
                            and r["audit"]["path"] == path, timeout=timeout)


def check_inner_record(rec, *, method, path, status, port, action="allow"):
    a = audit.check_shape(rec)
    assert a["method"] == method, rec
    assert a["path"] == path, rec
    assert a["status_code"] == status, rec
    assert a["action"] == action, rec
    assert a["host"] == f"allowed.test:{port}", rec
    return a


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- curl --http2: both listeners, both origins --------------------------------------------------

@pytest.mark.parametrize("listener", ["https", "tunnel", "socks5"])
def test_curl_http2_reaches_origin(proxy_factory, origin, ca_cert, listener):
    p = start_for(proxy_factory, origin)
    port = origin.port
    r = curl_h2(f"https://allowed.test:{port}/echo/h2?x=1", **via(listener, p, "allowed.test", port),
                cacert=ca_cert, method="POST", data="hello over h2",
                headers=["X-Test: yes", "Content-Type: text/plain"])
    assert r.exit_code == 0 and r.http_code == 200, r
    assert r.info.get("http_version") == "2", f"curl did not speak HTTP/2 with the proxy: {r.info}"
    echo = r.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo/h2" and echo["query"] == "x=1"
    assert echo["body"] == "hello over h2"
    assert hdrs(echo)["x-test"] == "yes"
    assert authority_seen(echo) == f"allowed.test:{port}"
    if is_h2(origin):
        assert echo["alpn"] == "h2"
        assert origin.non_h2 == 0, "the proxy reached the h2-only origin without ALPN h2"

    [rec] = inner(p, "/echo/h2")
    check_inner_record(rec, method="POST", path="/echo/h2", status=200, port=port)
    if listener == "https":
        assert rec["audit"]["sni"] == "allowed.test"
    else:
        assert rec["tunnel"]["target"] == f"allowed.test:{port}", rec
        [conn] = audit.connect_records(p.audit_records())
        assert conn["audit"]["host"] == f"allowed.test:{port}"
        assert conn["audit"]["action"] == "allow"

    # Upstream status codes pass through, each stream audited with its own status.
    r = curl_h2(f"https://allowed.test:{port}/status/418", **via(listener, p, "allowed.test", port),
                cacert=ca_cert)
    assert r.http_code == 418 and r.info.get("http_version") == "2", r
    [rec] = inner(p, "/status/418")
    check_inner_record(rec, method="GET", path="/status/418", status=418, port=port)


def test_curl_http2_parallel_transfers_each_audited(proxy_factory, origin, ca_cert):
    """curl -Z multiplexes three URLs as streams over HTTP/2: three exchanges, three records."""
    p = start_for(proxy_factory, origin)
    port = origin.port
    urls = [f"https://allowed.test:{port}/echo/multi{i}" for i in range(3)]
    r = clients.curl(urls[0], resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert,
                     output="/dev/null",
                     extra=["--http2", "-Z", *sum((["-o", "/dev/null", u] for u in urls[1:]), [])])
    assert r.exit_code == 0, r
    infos = clients.transfers_info(r)
    assert len(infos) == 3, r.write_out
    assert [i.get("http_version") for i in infos] == ["2"] * 3, infos
    assert [i.get("http_code") for i in infos] == [200] * 3, infos
    recs = p.wait_audit(3, predicate=lambda x: x["audit"]["path"].startswith("/echo/multi"))
    assert sorted(x["audit"]["path"] for x in recs) == ["/echo/multi0", "/echo/multi1", "/echo/multi2"]
    assert all(x["audit"]["status_code"] == 200 for x in recs), recs
    assert len(origin.requests_for("/echo/multi")) == 3


def test_denied_host_gets_403_over_h2(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    r = curl_h2(f"https://denied.test:{port}/echo/denied", listener_resolve=f"denied.test:{port}:127.0.0.1",
                cacert=ca_cert)
    assert r.http_code == 403, r
    assert r.info.get("http_version") == "2", r
    [rec] = p.wait_audit(1)
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 403, rec
    assert a["host"] == f"denied.test:{port}" and a["path"] == "/echo/denied", rec
    assert rec["rejected_by"] == "allowlist"
    assert h2_upstream.connections == 0 and not h2_upstream.heads


def test_denied_inner_authority_in_tunnel_gets_403_on_the_stream(proxy_factory, h2_upstream, ca_cert):
    """CONNECT to an allowed name, then an h2 stream for a denied one: 403 on that stream."""
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    with h2_client(p, "tunnel", port, ca_cert, sni="denied.test") as c:
        res = c.wait(c.request("GET", "/echo/inner-denied", f"denied.test:{port}"))
    assert res.status == 403, res
    recs = p.wait_audit(2)
    [rec] = audit.inner_records(recs)
    assert rec["audit"]["action"] == "reject" and rec["audit"]["status_code"] == 403, rec
    assert rec["rejected_by"] == "allowlist"
    assert not h2_upstream.heads


# --- nghttp: many concurrent streams on one connection -------------------------------------------

def test_nghttp_concurrent_streams_each_audited(proxy_factory, origin, ca_cert):
    p = start_for(proxy_factory, origin)
    port = origin.port
    res = clients.nghttp([f"https://127.0.0.1:{port}/echo/nghttp"], authority=f"allowed.test:{port}",
                         cafile=ca_cert, extra=["-m", "10"])
    assert res.exit_code == 0, res
    assert clients.nghttp_verified(res), f"nghttp did not trust the proxy's leaf: {res}"
    assert len(res.rows) == 10 and all(code == 200 for _, code, _, _ in res.rows), res
    recs = inner(p, "/echo/nghttp", n=10)
    assert len(recs) == 10, recs
    for rec in recs:
        check_inner_record(rec, method="GET", path="/echo/nghttp", status=200, port=port)
    assert len(origin.requests_for("/echo/nghttp")) == 10


def test_nghttp_streams_are_served_concurrently(proxy_factory, h2_upstream, ca_cert):
    """Ten 1-second responses on one connection take about one second, not ten."""
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    res = clients.nghttp([f"https://127.0.0.1:{port}/slow?s=1"], authority=f"allowed.test:{port}",
                         cafile=ca_cert, extra=["-m", "10"])
    assert len(res.rows) == 10 and all(code == 200 for _, code, _, _ in res.rows), res
    assert res.seconds < 5, f"10 concurrent 1 s streams took {res.seconds:.1f} s: serialized?"
    assert len(inner(p, "/slow", n=10)) == 10


# --- trailers, resets, streaming ------------------------------------------------------------------

@pytest.mark.parametrize("listener", ["https", "tunnel"])
def test_response_trailers_reach_the_client(proxy_factory, h2_upstream, ca_cert, listener):
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    with h2_client(p, listener, port, ca_cert) as c:
        res = c.wait(c.request("GET", "/trailers", f"allowed.test:{port}"))
        grpc_res = c.wait(c.request("GET", "/trailers?grpc=1", f"allowed.test:{port}"))
    assert res.ended and res.status == 200, res
    assert bytes(res.body) == b"trailers follow\n"
    assert dict(res.trailers) == {"x-checksum": "sha256-abc123", "x-trailer-two": "2"}, res
    assert grpc_res.ended and grpc_res.status == 200, grpc_res
    assert dict(grpc_res.trailers) == {"grpc-status": "5", "grpc-message": "not%20found"}, grpc_res
    recs = inner(p, "/trailers", n=2)
    assert all(r["audit"]["status_code"] == 200 for r in recs), recs


def test_h1_origin_chunked_trailers_become_h2_trailers(proxy_factory, https_upstream, ca_cert):
    p = start_for(proxy_factory, https_upstream)
    port = https_upstream.port
    with h2_client(p, "https", port, ca_cert) as c:
        res = c.wait(c.request("GET", "/trailers", f"allowed.test:{port}"))
    assert res.ended and res.status == 200, res
    assert bytes(res.body) == b"trailers follow\n"
    assert dict(res.trailers) == {"x-checksum": "sha256-abc123", "x-trailer-two": "2"}, res
    [rec] = inner(p, "/trailers")
    assert rec["audit"]["status_code"] == 200


def test_request_trailers_reach_the_origin(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    with h2_client(p, "https", port, ca_cert) as c:
        res = c.wait(c.request("POST", "/echo/req-trailers", f"allowed.test:{port}",
                               headers=[("content-type", "application/octet-stream"), ("te", "trailers")],
                               body=b"payload", trailers=[("x-request-checksum", "c0ffee")]))
    assert res.status == 200, res
    echo = json.loads(res.body)
    assert echo["body"] == "payload"
    assert echo["trailers"] == [["x-request-checksum", "c0ffee"]], echo


def test_origin_reset_reaches_the_client(proxy_factory, h2_upstream, ca_cert):
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    with h2_client(p, "https", port, ca_cert) as c:
        res = c.wait(c.request("GET", "/reset", f"allowed.test:{port}"))
        assert res.reset_code is not None and not res.ended, f"no RST_STREAM reached the client: {res}"
        after = c.wait(c.request("GET", "/echo/after-reset", f"allowed.test:{port}"))
    assert after.status == 200, f"the connection did not survive a reset stream: {after}"
    inner(p, "/reset")


@pytest.mark.parametrize("listener", ["https", "tunnel"])
def test_client_reset_reaches_the_origin(proxy_factory, h2_upstream, ca_cert, listener):
    """The client cancels a 5-second stream after its first chunk: the origin sees RST_STREAM
    long before the stream would have ended, and the connection keeps working."""
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    with h2_client(p, listener, port, ca_cert) as c:
        sid = c.request("GET", "/stream?n=50&every=0.1", f"allowed.test:{port}")
        assert c.wait_for(lambda: c.streams[sid].received > 0, 5), c.streams[sid]
        c.reset(sid)
        reset_at = time.monotonic()
        seen = wait_until(lambda: any((r["path"] or "").startswith("/stream") for r in h2_upstream.resets), 3)
        assert seen, f"the origin saw no RST_STREAM; resets={h2_upstream.resets}"
        assert time.monotonic() - reset_at < 3
        [prog] = h2_upstream.progress_for("/stream")
        assert not prog["done"], prog
        after = c.wait(c.request("GET", "/echo/after-cancel", f"allowed.test:{port}"))
    assert after.status == 200, after


def _line_arrivals(res):
    """(arrival time, line) for every complete line of the body, in order."""
    out, buf = [], b""
    for t, data in res.chunks:
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append((t, line.decode()))
    return out


def test_streamed_response_chunks_arrive_promptly(proxy_factory, origin, ca_cert):
    """A response trickling out (a chunk every 200 ms) is relayed as it comes, not buffered."""
    p = start_for(proxy_factory, origin)
    port = origin.port
    path = "/stream?n=5&every=0.2" if is_h2(origin) else "/sse?n=5&every=0.2"
    with h2_client(p, "https", port, ca_cert) as c:
        res = c.wait(c.request("GET", path, f"allowed.test:{port}"), timeout=15)
    assert res.ended and res.status == 200, res
    sent = []
    for arrived, line in _line_arrivals(res):
        if is_h2(origin) and line.startswith("chunk "):
            sent.append((float(line.split("t=")[1]), arrived))
        elif line.startswith("data: "):
            sent.append((float(line[6:]), arrived))
    assert len(sent) == 5, res
    lags = [arrived - t for t, arrived in sent]
    assert max(lags) < 0.1, f"chunks were held back by the proxy: lags {lags}"


# --- secrets ------------------------------------------------------------------------------------

PH = "IRONSH_PROXY_h2-token"
REAL = "real-h2-secret-5e0b"


@pytest.mark.parametrize("listener", ["https", "tunnel"])
def test_secret_placeholder_in_h2_header_is_swapped(proxy_factory, origin, ca_cert, listener, tmp_path):
    p = start_for(proxy_factory, origin, env={"E2E_SECRET": REAL},
                  transforms=[allowlist_transform("allowed.test"), secret_header_transform(PH)])
    port = origin.port
    head_file = tmp_path / "response-head.txt"
    r = curl_h2(f"https://allowed.test:{port}/hello/secret", **via(listener, p, "allowed.test", port),
                cacert=ca_cert, headers=[f"Authorization: Bearer {PH}"], extra=["-D", str(head_file)])
    assert r.http_code == 200 and r.info.get("http_version") == "2", r
    [seen] = origin.requests_for("/hello/secret")
    assert hdrs(seen)["authorization"] == f"Bearer {REAL}", seen
    assert PH not in json.dumps(origin.requests)
    client_saw = r.body.decode("latin-1") + head_file.read_text(errors="replace")
    assert REAL not in client_saw
    [rec] = inner(p, "/hello/secret")
    assert rec["audit"]["status_code"] == 200
    assert REAL not in p.audit_path.read_text() + p.stderr_text()


# --- smuggling: malformed requests (RFC 9113 §8.2) never reach the origin -------------------------

def assert_connection_still_works(c, port):
    after = c.wait(c.request("GET", "/echo/after-malformed", f"allowed.test:{port}"))
    assert after.status == 200, f"well-formed request after the malformed one: {after}"


@pytest.mark.parametrize("case", list(MALFORMED_HEADERS))
def test_connection_specific_header_is_malformed(proxy_factory, origin, ca_cert, case):
    p = start_for(proxy_factory, origin)
    port = origin.port
    path = f"/echo/smuggle-{case}"
    with h2_client(p, "https", port, ca_cert, raw=True) as c:
        sid = c.request("POST", path, f"allowed.test:{port}",
                        headers=[("content-type", "text/plain"), MALFORMED_HEADERS[case]],
                        body=SMUGGLE_BODY)
        res = c.wait(sid)
        assert_rejected(c, res)
        assert_connection_still_works(c, port)
    assert not origin.requests_for("/echo/smuggle"), origin.requests_for("/echo/smuggle")
    assert not origin.requests_for("/echo/smuggled")
    if is_h2(origin):
        assert not origin.heads_for("/echo/smuggle"), origin.heads_for("/echo/smuggle")
        assert not origin.protocol_errors, origin.protocol_errors


@pytest.mark.parametrize("declared,sent", [(10, 5), (5, 10)], ids=["body-shorter", "body-longer"])
def test_content_length_mismatch_is_malformed(proxy_factory, origin, ca_cert, declared, sent):
    p = start_for(proxy_factory, origin)
    port = origin.port
    with h2_client(p, "https", port, ca_cert, raw=True) as c:
        sid = c.request("POST", "/echo/cl-mismatch", f"allowed.test:{port}",
                        headers=[("content-type", "text/plain"), ("content-length", str(declared))],
                        body=b"x" * sent)
        res = c.wait(sid)
        assert_rejected(c, res)
        assert_connection_still_works(c, port)
    time.sleep(0.3)  # a negative check: give a wrongly forwarded request time to land
    if is_h2(origin):
        # A streaming proxy may have sent the head on before the body showed the mismatch, but
        # the origin must never get a complete request, nor one that breaks its own length check.
        assert not origin.requests_for("/echo/cl-mismatch"), origin.requests_for("/echo/cl-mismatch")
        assert not origin.protocol_errors, origin.protocol_errors
    else:
        for rec in origin.requests_for("/echo/cl-mismatch"):
            declared_there = int(hdrs(rec).get("content-length") or -1)
            assert rec["body_length"] != declared_there, (
                f"the HTTP/1.1 origin got a complete request out of a malformed one: {rec}")


def test_host_header_disagreeing_with_authority(proxy_factory, origin, ca_cert):
    """:authority names an allowed host, a Host header a denied one: either the request is
    refused, or the origin is only ever told the allowed authority."""
    p = start_for(proxy_factory, origin)
    port = origin.port
    with h2_client(p, "https", port, ca_cert, raw=True) as c:
        res = c.wait(c.request("GET", "/echo/host-mismatch", f"allowed.test:{port}",
                               headers=[("host", f"denied.test:{port}")]))
    if res.status == 200:
        echo = json.loads(res.body)
        assert authority_seen(echo) == f"allowed.test:{port}", echo
        assert "denied.test" not in json.dumps(echo["headers"]), echo
    else:
        assert res.status in (400, 403) or res.reset_code == PROTOCOL_ERROR, res
        for rec in origin.requests_for("/echo/host-mismatch"):
            assert "denied.test" not in json.dumps(rec), rec


# --- flow control and memory ---------------------------------------------------------------------

def test_stalled_stream_is_flow_controlled_end_to_end(proxy_factory, h2_upstream, ca_cert):
    """The client never opens one stream's window (65,535 bytes) while reading everything else:
    the proxy must stop taking that stream's data from the origin (its memory stays flat, the
    origin stops sending) and other streams on both connections must keep flowing."""
    p = start_for(proxy_factory, h2_upstream)
    port = h2_upstream.port
    auth = f"allowed.test:{port}"
    path = f"/bytes/{GIB}"
    with h2_client(p, "https", port, ca_cert) as c:
        warm = c.wait(c.request("GET", "/bytes/1048576", auth, keep=False), timeout=15)
        assert warm.ended and warm.received == 1048576, warm
        baseline = p.rss_kib()
        sampler = RssSampler(p)
        sampler.start()
        try:
            sid = c.request("GET", path, auth, withhold=True, keep=False)
            c.wait_for(lambda: False, timeout=1.0)   # keep reading for a second
            for i in range(5):
                side = c.wait(c.request("GET", f"/echo/side-{i}", auth), timeout=5)
                assert side.status == 200 and side.ended, f"a stream next to a stalled one: {side}"
            c.wait_for(lambda: False, timeout=1.0)
            [prog1] = h2_upstream.progress_for(path)
            c.wait_for(lambda: False, timeout=1.0)
            [prog2] = h2_upstream.progress_for(path)
        finally:
            sampler.stop()
        stalled = c.streams[sid]
        assert stalled.received <= 65535 and not stalled.done, stalled
        assert prog2["sent"] - prog1["sent"] < (1 << 20), (
            f"the origin kept sending into a stalled stream: {prog1['sent']} → {prog2['sent']} bytes")
        assert prog2["sent"] < 256 << 20, prog2
        growth = sampler.peak - baseline
        assert growth < MAX_GROWTH_KIB, (
            f"proxy RSS grew by {growth} KiB while a stream was stalled (origin sent {prog2['sent']})")
        c.reset(sid)
        assert wait_until(lambda: any(r["path"] == path for r in h2_upstream.resets), 3), (
            f"the origin saw no RST_STREAM for the cancelled stream: {h2_upstream.resets}")


TRANSFER_CASES = [("h1", "h1"), ("h2", "h2"), ("h2", "h1")]
TRANSFER_IDS = ["h1-client-h1-origin", "h2-client-h2-origin", "h2-client-h1-origin"]


def _transfer_setup(request, proxy_factory, origin_kind):
    upstream = request.getfixturevalue("h2_upstream" if origin_kind == "h2" else "https_upstream")
    return upstream, start_for(proxy_factory, upstream)


def _version_flag(client):
    return "--http2" if client == "h2" else "--http1.1"


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("client,origin_kind", TRANSFER_CASES, ids=TRANSFER_IDS)
def test_1gib_download_memory_bounded(request, proxy_factory, ca_cert, client, origin_kind):
    upstream, p = _transfer_setup(request, proxy_factory, origin_kind)
    port = upstream.port
    kw = dict(resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert, output="/dev/null",
              extra=[_version_flag(client)])
    warm = clients.curl(f"https://allowed.test:{port}/bytes/1048576", **kw)
    assert warm.http_code == 200 and warm.size_download == 1048576, warm
    baseline = p.rss_kib()
    sampler = RssSampler(p)
    sampler.start()
    try:
        r = clients.curl(f"https://allowed.test:{port}/bytes/{GIB}", max_time=90, **kw)
    finally:
        sampler.stop()
    assert r.exit_code == 0 and r.http_code == 200, r
    assert r.size_download == GIB, r
    assert r.info.get("http_version") == ("2" if client == "h2" else "1.1"), r
    growth = sampler.peak - baseline
    print(f"1 GiB download {client}->{origin_kind}: RSS growth {growth} KiB, "
          f"{r.info.get('time_total')} s")  # shown with -rP; the closing notes quote it
    assert growth < MAX_GROWTH_KIB, (
        f"proxy RSS grew by {growth} KiB during a 1 GiB download (baseline {baseline} KiB)")
    [rec] = inner(p, f"/bytes/{GIB}")
    assert rec["audit"]["status_code"] == 200


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("client,origin_kind", TRANSFER_CASES, ids=TRANSFER_IDS)
def test_1gib_upload_memory_bounded(request, proxy_factory, ca_cert, client, origin_kind, tmp_path):
    upstream, p = _transfer_setup(request, proxy_factory, origin_kind)
    port = upstream.port
    big = tmp_path / "upload.bin"
    with open(big, "wb") as f:
        f.truncate(GIB)  # sparse: nothing is held in memory or written to disk
    kw = dict(resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert)
    warm = clients.curl(f"https://allowed.test:{port}/echo/warm", extra=[_version_flag(client)], **kw)
    assert warm.http_code == 200, warm
    baseline = p.rss_kib()
    sampler = RssSampler(p)
    sampler.start()
    try:
        r = clients.curl(f"https://allowed.test:{port}/sink", method="POST", max_time=90,
                         headers=["Content-Type: application/octet-stream", "Expect:"],
                         extra=[_version_flag(client), "-T", str(big)], **kw)
    finally:
        sampler.stop()
    assert r.exit_code == 0 and r.http_code == 200, r
    assert r.info.get("http_version") == ("2" if client == "h2" else "1.1"), r
    assert r.json() == {"length": GIB}, r
    [seen] = upstream.requests_for("/sink")
    assert seen["body_length"] == GIB
    growth = sampler.peak - baseline
    print(f"1 GiB upload {client}->{origin_kind}: RSS growth {growth} KiB, "
          f"{r.info.get('time_total')} s")
    assert growth < MAX_GROWTH_KIB, (
        f"proxy RSS grew by {growth} KiB during a 1 GiB upload (baseline {baseline} KiB)")
    [rec] = inner(p, "/sink")
    assert rec["audit"]["status_code"] == 200


# --- cleartext HTTP/2 with prior knowledge (h2c) inside a CONNECT tunnel -------------------------

@pytest.fixture
def h2c_upstream():
    srv = bind_paired(lambda port: H2UpstreamServer("127.0.0.2", port, None, "h2c-upstream", cleartext=True),
                      "127.0.0.1", 0)
    srv.start()
    yield srv
    srv.stop()


def test_h2c_prior_knowledge_through_tunnel(proxy_factory, h2c_upstream):
    """gRPC-style insecure channels: CONNECT, then the HTTP/2 preface in clear. Each stream is
    checked and audited like any request, and the origin, named in proxy.upstream_h2c, is spoken
    to in h2c."""
    p = proxy_factory.start(proxy_extra={"upstream_h2c": ["*.test"]})
    port = h2c_upstream.port
    kw = dict(proxy=p.tunnel_url, extra=["--http2-prior-knowledge", "--proxytunnel"])
    r = clients.curl(f"http://allowed.test:{port}/echo/h2c", **kw)
    assert r.http_code == 200, r
    assert r.info.get("http_version") == "2", r
    echo = r.json()
    assert echo["alpn"] == "h2c" and echo["scheme"] == "http", echo
    assert echo["authority"] == f"allowed.test:{port}", echo
    [rec] = inner(p, "/echo/h2c")
    check_inner_record(rec, method="GET", path="/echo/h2c", status=200, port=port)


@pytest.mark.parametrize("route", ["plain", "tunnel"])
def test_h2c_client_reaches_an_http11_origin(proxy_factory, http_upstream, route):
    """`curl --http2-prior-knowledge` to an ordinary HTTP/1.1 site: a cleartext origin not named
    in proxy.upstream_h2c is spoken to in HTTP/1.1 (the streams translated), not h2c, which such
    a site refuses (it answers the preface with 400: a 502 for the client)."""
    p = proxy_factory.start()
    port = http_upstream.port
    if route == "plain":
        kw = dict(extra=["--http2-prior-knowledge", "--connect-to",
                         f"allowed.test:{port}:127.0.0.1:{p.http_port}"])
    else:
        kw = dict(proxy=p.tunnel_url, extra=["--http2-prior-knowledge", "--proxytunnel"])
    for i in range(2):
        r = clients.curl(f"http://allowed.test:{port}/echo/h2c-to-h1?n={i}", data="ping", method="POST", **kw)
        assert r.http_code == 200, r
        assert r.info.get("http_version") == "2", r
        echo = r.json()
        assert echo["server"] == "http-upstream" and echo["path"] == "/echo/h2c-to-h1", echo
        assert echo["method"] == "POST" and echo["body"] == "ping", echo
    recs = inner(p, "/echo/h2c-to-h1", n=2)
    for rec in recs:
        check_inner_record(rec, method="POST", path="/echo/h2c-to-h1", status=200, port=port)
    assert 1 <= http_upstream.connections <= 2  # keep-alive pools are per worker thread


def test_h2c_inner_authority_is_policy_checked(proxy_factory, h2c_upstream):
    """The CONNECT target is allowed, the stream's :authority is not: 403 on the stream."""
    p = proxy_factory.start()
    port = h2c_upstream.port
    r = clients.curl(f"http://allowed.test:{port}/echo/sneaky", proxy=p.tunnel_url,
                     headers=[f"Host: denied.test:{port}"],
                     extra=["--http2-prior-knowledge", "--proxytunnel"])
    assert r.http_code in (400, 403), r
    assert not h2c_upstream.requests_for("/echo/sneaky")


# --- abuse ----------------------------------------------------------------------------------------

def test_rapid_reset_is_bounded_and_other_clients_are_served(proxy_factory, h2_upstream, ca_cert):
    """CVE-2023-44487: a client opens and at once resets up to 2,000 streams to a slow origin path.
    The proxy must cut the abusive connection (reset rate limit), cancel every stream it did
    forward at the origin too (no 2-second requests left running there), stay within memory, and
    keep serving another client."""
    p = proxy_factory.start(https_listen=f"127.0.0.1:{h2_upstream.port}")
    port = h2_upstream.port
    baseline = p.rss_kib()
    sent = 0
    with h2_client(p, "https", port, ca_cert) as c:
        for i in range(2000):
            try:
                sid = c.request("GET", f"/slow?s=2&n={i}", f"allowed.test:{port}")
                c.reset(sid)
            except (OSError, h2.exceptions.ProtocolError):
                break  # the proxy gave up on this connection
            sent += 1
            if i % 100 == 0 and not c.pump(0):
                break
        wait_until(lambda: not c.pump(0.1), 10.0)  # until the proxy ends the connection (bounded)
        cut = c.closed or c.terminated is not None
    with h2_client(p, "https", port, ca_cert) as other:
        res = other.wait(other.request("GET", "/echo/still-serving", f"allowed.test:{port}"))
    assert res.status == 200, res
    heads = len(h2_upstream.heads_for("/slow"))
    cancelled = lambda: sum(1 for r in h2_upstream.resets if (r["path"] or "").startswith("/slow"))
    wait_until(lambda: cancelled() >= heads, 3.0)
    print(f"rapid reset: {sent} streams sent and reset, {heads} reached the origin, "
          f"{cancelled()} cancelled there")
    assert cut, "the proxy never cut a connection resetting streams as fast as it opens them"
    assert heads <= sent
    assert cancelled() >= heads, f"only {cancelled()} of {heads} forwarded streams were cancelled at the origin"
    growth = p.rss_kib() - baseline
    print(f"rapid reset: RSS growth {growth} KiB")
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB"
    assert p.alive()


@pytest.mark.timeout(60)
def test_slow_upload_longer_than_header_timeout_reaches_the_origin(proxy_factory, ca_cert, origin):
    """upstream_response_header_timeout counts from the end of the request, as it does for
    HTTP/1.1: an upload that takes longer than it (here 4 s of pieces against a 1 s timeout) is
    not cut with a 504 while its pieces keep moving."""
    p = start_for(proxy_factory, origin, proxy_extra={"upstream_response_header_timeout": "1s"})
    piece = b"x" * 1000
    with h2_client(p, "https", origin.port, ca_cert) as c:
        sid = c.request("POST", "/sink", f"allowed.test:{origin.port}",
                        headers=[("content-type", "application/octet-stream")], end_stream=False)
        for _ in range(8):  # 8 pieces, 0.5 s apart
            c.send_body(sid, piece, end_stream=False)
            c.pump(0.5)
        c.send_body(sid, b"", end_stream=True)
        res = c.wait(sid, timeout=15)
    assert res.status == 200, res
    assert json.loads(res.body) == {"length": 8000}, res
    [rec] = inner(p, "/sink")
    assert rec["audit"]["status_code"] == 200, rec


@pytest.mark.timeout(60)
def test_stalled_upload_is_cut_after_client_idle_timeout(proxy_factory, ca_cert, origin):
    """A request body that stops moving is bounded by client_idle_timeout, not left open until
    the client goes away: a 408 while the origin's stream can still be answered (h2 origin), a
    reset of the client's stream when the body was going into an HTTP/1.1 origin's connection;
    audited with the reason either way."""
    p = start_for(proxy_factory, origin, proxy_extra={"client_idle_timeout": "2s"})
    with h2_client(p, "https", origin.port, ca_cert) as c:
        sid = c.request("POST", "/sink", f"allowed.test:{origin.port}",
                        headers=[("content-type", "application/octet-stream")], end_stream=False)
        c.send_body(sid, b"x" * 100, end_stream=False)
        res = c.wait(sid, timeout=15)
    assert res.done, res
    [rec] = inner(p, "/sink")
    if is_h2(origin):
        assert res.status == 408, res
        assert rec["audit"]["status_code"] == 408, rec
    else:
        assert res.reset_code is not None, res
        assert rec["audit"]["action"] == "client_cancel", rec
    assert rec.get("error", "").startswith("timeout reading request body after 100 request bytes"), rec
