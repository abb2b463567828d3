"""Server-Sent Events stream through the MITM event by event (issue 5): the
upstream sends one event every 200 ms with its send time; each must reach the client within
50 ms, i.e. the proxy never waits to fill a buffer."""
import http.client
import ssl
import time

from harness import audit

EVENTS = 8
MAX_LAG_S = 0.050


def _read_events(resp, n, deadline):
    lags, buf = [], b""
    while len(lags) < n and time.monotonic() < deadline:
        chunk = resp.read1(65536)
        if not chunk:
            break
        arrived = time.time()
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    lags.append(arrived - float(line[6:]))
    return lags


def test_sse_events_arrive_as_sent_through_tunnel(proxy, https_upstream, ca_cert):
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.tunnel_port, context=ctx, timeout=15)
    conn.set_tunnel("allowed.test", https_upstream.port)
    conn.request("GET", f"/sse?n={EVENTS}&every=0.2")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    lags = _read_events(resp, EVENTS, time.monotonic() + 15)
    conn.close()
    assert len(lags) == EVENTS, lags
    assert max(lags) < MAX_LAG_S, [round(l * 1000, 1) for l in lags]
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    assert inner["audit"]["path"] == "/sse"
    # The record is written when the stream ends: its duration covers all events.
    assert inner["audit"]["duration_ms"] >= EVENTS * 200 * 0.9


def test_sse_events_arrive_as_sent_plain_http(proxy, http_upstream):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=15)
    conn.request("GET", f"/sse?n={EVENTS}&every=0.2", headers={"Host": f"allowed.test:{http_upstream.port}"})
    resp = conn.getresponse()
    assert resp.status == 200
    lags = _read_events(resp, EVENTS, time.monotonic() + 15)
    conn.close()
    assert len(lags) == EVENTS, lags
    assert max(lags) < MAX_LAG_S, [round(l * 1000, 1) for l in lags]
