"""secrets `redact_responses: true`: an upstream that reflects the request (an echo service, an error
page quoting the Authorization header) must not hand the workload the real secret the proxy swapped
in. The client sends a placeholder; the upstream receives the real value and echoes it back in a
response header, the reason phrase, the body (whole, split across 1-byte writes, sprinkled through
20 MiB, in SSE events) and trailers; the client must see the placeholder and never the real value,
checked on the raw bytes it received. Compressed bodies are relayed untouched and the audit trace
says so. Without the key (default) responses pass unmodified, as in the Go proxy.

Every test with redact_responses: true fails on a binary without the feature: such a binary refuses
the unknown key at start-up, and were the key merely ignored the real value would reach the client.
"""
import gzip
import json
import socket
import time

import pytest

from harness import audit, clients
from harness.configs import allowlist_transform
from harness.h2_client import H2Client
from harness.rss import RssSampler

PH = "IRONSH_PH_redact-0f3a"            # what the workload knows
REAL = "sk-live-REAL-4b1d9e77c2"        # what only the proxy and the upstream may see
ENV = {"E2E_REDACT": REAL}
MIB = 1 << 20

pytestmark = pytest.mark.timeout(90)


# --- helpers ------------------------------------------------------------------------------------

def secrets(redact=True):
    cfg = {"secrets": [{"source": {"type": "env", "var": "E2E_REDACT"},
                        "rules": [{"host": "allowed.test"}],
                        "replace": {"proxy_value": PH, "match_headers": ["Authorization"]}}]}
    if redact is not None:
        cfg["redact_responses"] = redact
    return {"name": "secrets", "config": cfg}


def start(proxy_factory, upstream, redact=True):
    return proxy_factory.start(https_listen=f"127.0.0.1:{upstream.port}", env=ENV,
                               transforms=[allowlist_transform("allowed.test"), secrets(redact)])


def open_socket(proxy, listener, upstream, ca_cert):
    """A client connection ready for an HTTP/1.1 request to allowed.test:<upstream.port>."""
    if listener == "plain":
        return socket.create_connection(("127.0.0.1", proxy.http_port), timeout=15)
    if listener == "tunnel":
        sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), f"allowed.test:{upstream.port}")
        assert status == 200, head
        return clients.tls_wrap(sock, "allowed.test", ca_cert, timeout=15)
    raw = socket.create_connection(("127.0.0.1", upstream.port), timeout=15)
    return clients.tls_wrap(raw, "allowed.test", ca_cert, timeout=15)


def read_all(sock, deadline_s=30.0, on_chunk=None) -> bytes:
    """Everything the proxy sends until it closes (the request says Connection: close); bounded."""
    buf = bytearray()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            continue
        except (ConnectionError, OSError):
            break
        if not chunk:
            break
        if on_chunk:
            on_chunk(chunk)
        else:
            buf += chunk
    return bytes(buf)


def dechunk(raw: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return bytes(out)
        out += raw[pos:pos + size]
        assert raw[pos + size:pos + size + 2] == b"\r\n", "bad chunk framing"
        pos += size + 2


class Response:
    def __init__(self, raw: bytes):
        self.raw = raw
        head, _, self.wire_body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(" ")[1])
        self.headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        te = self.header("transfer-encoding")
        cl = self.header("content-length")
        if te and "chunked" in te.lower():
            self.body = dechunk(self.wire_body)
        elif cl is not None:
            assert len(self.wire_body) == int(cl), f"Content-Length {cl} but {len(self.wire_body)} bytes"
            self.body = self.wire_body
        else:
            self.body = self.wire_body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def get(proxy, listener, upstream, ca_cert, path, auth=f"Bearer {PH}") -> Response:
    sock = open_socket(proxy, listener, upstream, ca_cert)
    try:
        req = (f"GET {path} HTTP/1.1\r\nHost: allowed.test:{upstream.port}\r\n"
               f"Authorization: {auth}\r\nConnection: close\r\n\r\n")
        sock.sendall(req.encode())
        return Response(read_all(sock))
    finally:
        sock.close()


def upstream_for(listener, http_upstream, https_upstream):
    return http_upstream if listener == "plain" else https_upstream


def secrets_response_trace(proxy, path):
    [rec] = proxy.wait_audit(1, predicate=lambda r: r["audit"]["method"] != "CONNECT"
                             and r["audit"]["path"] == path)
    audit.check_shape(rec)
    assert REAL not in json.dumps(rec)
    for tr in rec.get("response_transforms") or []:
        if tr["name"] == "secrets":
            return tr.get("annotations") or {}
    raise AssertionError(f"no secrets response trace in {rec}")


def upstream_saw_real(upstream, path):
    [seen] = upstream.requests_for(path)
    auth = dict((k.lower(), v) for k, v in seen["headers"])["authorization"]
    assert auth == f"Bearer {REAL}", "the swap itself did not happen"


LISTENERS = ["plain", "mitm", "tunnel"]


# --- HTTP/1.1 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("listener", LISTENERS)
def test_reflected_header_and_body_are_redacted(proxy_factory, http_upstream, https_upstream, ca_cert, listener):
    up = upstream_for(listener, http_upstream, https_upstream)
    proxy = start(proxy_factory, up)
    r = get(proxy, listener, up, ca_cert, "/reflect")
    assert r.status == 200, r.raw[:300]
    assert REAL.encode() not in r.raw, r.raw[:600]
    assert r.header("X-Reflected") == f"Bearer {PH}"
    assert r.body.startswith(f"authorization=Bearer {PH}\n".encode()), r.body[:200]
    echo = json.loads(r.body.split(b"\n", 1)[1])
    assert ["Authorization", f"Bearer {PH}"] in echo["headers"]
    # The placeholder is 2 bytes shorter: the body was re-framed rather than mislabelled.
    assert r.header("Content-Length") is None and r.header("Transfer-Encoding") == "chunked"
    upstream_saw_real(up, "/reflect")
    # X-Reflected, the body's first line and the echoed Authorization header: 3 replacements
    assert secrets_response_trace(proxy, "/reflect") == {"redacted": 3}


@pytest.mark.parametrize("listener", LISTENERS)
def test_default_off_passes_the_response_unmodified(proxy_factory, http_upstream, https_upstream, ca_cert,
                                                     listener):
    """The Go proxy's behaviour, kept when redact_responses is absent or false."""
    up = upstream_for(listener, http_upstream, https_upstream)
    proxy = start(proxy_factory, up, redact=None)
    r = get(proxy, listener, up, ca_cert, "/reflect")
    assert r.status == 200
    assert r.header("X-Reflected") == f"Bearer {REAL}"
    assert r.body.startswith(f"authorization=Bearer {REAL}\n".encode())
    assert r.header("Content-Length") == str(len(r.body))  # framing untouched
    assert secrets_response_trace(proxy, "/reflect") == {}


def test_redact_responses_false_passes_unmodified(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream, redact=False)
    r = get(proxy, "mitm", https_upstream, ca_cert, "/reflect")
    assert r.header("X-Reflected") == f"Bearer {REAL}"


@pytest.mark.parametrize("listener", ["mitm", "tunnel"])
def test_keep_alive_and_head_after_redacted_responses(proxy_factory, https_upstream, ca_cert, listener):
    """The re-framed (chunked) bodies end exactly where they should: one client connection and one
    upstream connection carry several redacted responses; HEAD keeps its head-only framing."""
    proxy = start(proxy_factory, https_upstream)
    port = https_upstream.port
    if listener == "tunnel":
        conn = clients.https_via_tunnel(proxy.addr("tunnel"), "allowed.test", port, ca_cert)
    else:
        conn = clients.https_via_listener(("127.0.0.1", port), "allowed.test", ca_cert)
    auth = {"Authorization": f"Bearer {PH}"}
    try:
        for path in ("/reflect", "/drip?pause=0.001", "/reflect"):
            conn.request("GET", path, headers=auth)
            res = conn.getresponse()
            body = res.read()
            assert res.status == 200 and REAL.encode() not in body and PH.encode() in body, body[:200]
            assert res.getheader("X-Reflected") in (None, f"Bearer {PH}")
        conn.request("HEAD", "/reflect", headers=auth)
        res = conn.getresponse()
        assert res.read() == b""
        assert res.getheader("X-Reflected") == f"Bearer {PH}"
        assert res.getheader("Content-Length") is not None  # HEAD: the origin's head, framing kept
    finally:
        conn.close()
    assert https_upstream.connections == 1


def test_reason_phrase_is_redacted(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream)
    r = get(proxy, "mitm", https_upstream, ca_cert, "/reflect?reason=1")
    assert r.status == 401
    assert REAL.encode() not in r.raw, r.raw[:300]
    assert r.status_line == f"HTTP/1.1 401 Bad credentials Bearer {PH}"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("listener", LISTENERS)
def test_secret_split_across_one_byte_reads(proxy_factory, http_upstream, https_upstream, ca_cert, listener,
                                            framing):
    up = upstream_for(listener, http_upstream, https_upstream)
    proxy = start(proxy_factory, up)
    cl = "&cl=1" if framing == "content-length" else ""
    r = get(proxy, listener, up, ca_cert, f"/drip?pause=0.005{cl}")
    assert r.status == 200
    assert REAL.encode() not in r.raw
    assert r.body == f"token=Bearer {PH}\n".encode()
    assert secrets_response_trace(proxy, "/drip") == {"redacted": 1}


def test_large_body_with_sprinkled_secret_bounded_memory(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream)
    size = 20 * MIB
    every = 65543  # not a multiple of any read size: copies straddle the upstream's 64 KiB writes
    secret = f"Bearer {REAL}".encode()
    copies = size // every
    tail = size - copies * every  # a partial block at the end: filler only when shorter than it
    assert tail < every - len(secret)
    sock = open_socket(proxy, "tunnel", https_upstream, ca_cert)
    baseline = proxy.rss_kib()
    sampler = RssSampler(proxy)
    sampler.start()
    try:
        sock.sendall((f"GET /sprinkle/{size}?every={every} HTTP/1.1\r\nHost: allowed.test:{https_upstream.port}\r\n"
                      f"Authorization: Bearer {PH}\r\nConnection: close\r\n\r\n").encode())
        r = Response(read_all(sock, deadline_s=60))  # the test keeps the 20 MiB; the proxy must not
    finally:
        sampler.stop()
        sock.close()
    assert r.status == 200
    assert REAL.encode() not in r.raw and REAL.encode() not in r.body
    assert r.body.count(f"Bearer {PH}".encode()) == copies
    assert len(r.body) == size - copies * (len(REAL) - len(PH))
    growth = sampler.peak - baseline
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB"
    assert secrets_response_trace(proxy, f"/sprinkle/{size}") == {"redacted": copies}


def test_gzip_body_left_alone_and_audited(proxy_factory, https_upstream, ca_cert):
    proxy = start(proxy_factory, https_upstream)
    r = get(proxy, "mitm", https_upstream, ca_cert, "/reflect?gzip=1")
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert r.header("X-Reflected") == f"Bearer {PH}"           # the head is still redacted
    assert r.header("Content-Length") == str(len(r.body))        # the body is relayed as is
    assert gzip.decompress(r.body).startswith(f"authorization=Bearer {REAL}\n".encode())
    assert secrets_response_trace(proxy, "/reflect") == {"redacted": 1,
                                                         "redaction": "skipped (content-encoding)"}


@pytest.mark.parametrize("listener", ["plain", "tunnel"])
def test_sse_keeps_streaming_event_by_event(proxy_factory, http_upstream, https_upstream, ca_cert, listener):
    up = upstream_for(listener, http_upstream, https_upstream)
    proxy = start(proxy_factory, up)
    n, every = 5, 0.4
    sock = open_socket(proxy, listener, up, ca_cert)
    arrivals = []   # (arrival time, send time) per event
    raw = bytearray()
    pending = b""

    def on_chunk(chunk):
        nonlocal pending
        raw.extend(chunk)
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.startswith(b"data: ") and b" t=" in line:
                arrivals.append((time.time(), float(line.rsplit(b" t=", 1)[1])))

    try:
        sock.sendall((f"GET /reflect-sse?n={n}&every={every} HTTP/1.1\r\nHost: allowed.test:{up.port}\r\n"
                      f"Authorization: Bearer {PH}\r\nConnection: close\r\n\r\n").encode())
        read_all(sock, deadline_s=30, on_chunk=on_chunk)
    finally:
        sock.close()
    assert REAL.encode() not in raw
    assert bytes(raw).count(f"data: Bearer {PH} t=".encode()) == n
    assert len(arrivals) == n, arrivals
    # Each event reached the client long before the next was even sent: nothing waits for more
    # bytes than an event (a generous bound, not a latency measurement).
    lags = [arrived - sent for arrived, sent in arrivals]
    assert max(lags) < every / 2, lags


def test_websocket_101_head_redacted_frames_untouched(proxy_factory, https_upstream, ca_cert):
    """No response phase runs for a protocol switch, but the 101's head is still redacted; the
    frames that follow are relayed untouched (documented: frames are not rewritten)."""
    proxy = start(proxy_factory, https_upstream)
    sock = open_socket(proxy, "mitm", https_upstream, ca_cert)
    try:
        sock.sendall((f"GET /ws-reflect HTTP/1.1\r\nHost: allowed.test:{https_upstream.port}\r\n"
                      f"Authorization: Bearer {PH}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = clients.read_head(sock)
        assert clients.status_of(head) == 101, head
        assert REAL.encode() not in head, head
        assert f"X-Reflected: Bearer {PH}".encode() in head, head
        frame = f"frame carrying {REAL}".encode()
        sock.sendall(frame)
        echoed = b""
        deadline = time.monotonic() + 10
        while len(echoed) < len(frame) and time.monotonic() < deadline:
            echoed += sock.recv(4096)
        assert echoed == frame  # frames are not redacted
    finally:
        sock.close()


# --- HTTP/2 clients -------------------------------------------------------------------------------

@pytest.fixture(params=["h2", "h1"], ids=["h2-origin", "h1-origin"])
def origin(request):
    return request.getfixturevalue("h2_upstream" if request.param == "h2" else "https_upstream")


@pytest.mark.parametrize("listener", ["mitm", "tunnel"])
def test_h2_client_reflection_redacted(proxy_factory, origin, ca_cert, listener):
    proxy = start(proxy_factory, origin)
    port = origin.port
    if listener == "tunnel":
        c = H2Client.via_tunnel(proxy.addr("tunnel"), f"allowed.test:{port}", "allowed.test", ca_cert)
    else:
        c = H2Client.connect(("127.0.0.1", port), "allowed.test", ca_cert)
    with c:
        # The h1 origin sends trailers only on request; the h2 one always does.
        sid = c.request("GET", "/reflect?trailers=1", f"allowed.test:{port}",
                        headers=[("authorization", f"Bearer {PH}")])
        res = c.wait(sid)
    assert res.ended and res.status == 200, res
    everything = json.dumps([res.headers, res.trailers]).encode() + bytes(res.body)
    assert REAL.encode() not in everything, res
    assert res.header("x-reflected") == [f"Bearer {PH}"]
    assert res.header("content-length") == []  # the body changed length: DATA frames frame it
    assert bytes(res.body).startswith(f"authorization=Bearer {PH}\n".encode())
    assert ("x-reflected-trailer", f"Bearer {PH}") in res.trailers, res.trailers
    [seen] = origin.requests_for("/reflect")
    assert dict((k.lower(), v) for k, v in seen["headers"])["authorization"] == f"Bearer {REAL}"
    # header, body line, echoed header (h2 origin: its JSON; h1 origin: the same), trailer
    assert secrets_response_trace(proxy, "/reflect") == {"redacted": 4}


def test_h2_client_default_off_unmodified(proxy_factory, h2_upstream, ca_cert):
    proxy = start(proxy_factory, h2_upstream, redact=None)
    port = h2_upstream.port
    with H2Client.connect(("127.0.0.1", port), "allowed.test", ca_cert) as c:
        sid = c.request("GET", "/reflect", f"allowed.test:{port}", headers=[("authorization", f"Bearer {PH}")])
        res = c.wait(sid)
    assert res.header("x-reflected") == [f"Bearer {REAL}"]
    assert res.header("content-length") == [str(len(res.body))]
    assert ("x-reflected-trailer", f"Bearer {REAL}") in res.trailers
    assert secrets_response_trace(proxy, "/reflect") == {}


def test_h2_client_gzip_left_alone(proxy_factory, h2_upstream, ca_cert):
    proxy = start(proxy_factory, h2_upstream)
    port = h2_upstream.port
    with H2Client.connect(("127.0.0.1", port), "allowed.test", ca_cert) as c:
        sid = c.request("GET", "/reflect?gzip=1", f"allowed.test:{port}",
                        headers=[("authorization", f"Bearer {PH}")])
        res = c.wait(sid)
    assert res.ended and res.status == 200, res
    assert res.header("x-reflected") == [f"Bearer {PH}"]
    assert res.header("content-length") == [str(len(res.body))]
    assert gzip.decompress(bytes(res.body)).startswith(f"authorization=Bearer {REAL}\n".encode())
    assert secrets_response_trace(proxy, "/reflect") == {"redacted": 2, "redaction": "skipped (content-encoding)"}
