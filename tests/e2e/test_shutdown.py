"""Graceful shutdown (SIGTERM / SIGINT): /readyz answers 503 and the listeners refuse new
connections at once, idle connections are closed at once, exchanges and tunnels in flight finish
within proxy.shutdown_timeout (default 10 s, as the Go proxy's budget); what is still open at the
timeout is cut and its audit record says so, with the bytes relayed; a second signal cuts at once.
Transfers are paced by harness/raw_upstream.py so they are in flight when the signal comes."""
import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from harness import clients
from harness.h2_client import H2Client
from harness.raw_upstream import RawUpstream

MIB = 1024 * 1024
CUT = re.compile(r"^cut at shutdown after (\d+) response bytes$")


def start_proxy(proxy_factory, upstream, shutdown_timeout=None):
    # Without the key the proxy runs on its default (10 s): the binary before this key existed
    # then starts too, and these tests show what it did with transfers in flight.
    extra = {"shutdown_timeout": shutdown_timeout} if shutdown_timeout else None
    return proxy_factory.start(https_listen=f"127.0.0.1:{upstream.port}", proxy_extra=extra)


def wait_until(pred, timeout=10.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def in_background(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("result", fn()), daemon=True)
    t.start()
    return t, out


def fetch(proxy, route, upstream, plain, path, **kw):
    """curl `path` through `route`: https-h1 / https-h2 (HTTPS listener), tunnel-h1 / tunnel-h2
    (CONNECT, MITM inside), http (plain listener, plain upstream)."""
    if route == "http":
        return clients.curl(f"http://allowed.test:{plain.port}{path}", proxy=f"http://127.0.0.1:{proxy.http_port}",
                            output="/dev/null", **kw)
    proto = ["--http2"] if route.endswith("h2") else ["--http1.1"]
    url = f"https://allowed.test:{upstream.port}{path}"
    if route.startswith("tunnel"):
        return clients.curl(url, proxy=proxy.tunnel_url, cacert=kw.pop("cacert"), output="/dev/null",
                            extra=proto, **kw)
    return clients.curl(url, resolve=f"allowed.test:{upstream.port}:127.0.0.1", cacert=kw.pop("cacert"),
                        output="/dev/null", extra=proto, **kw)


def readyz_status(proxy):
    try:
        return urllib.request.urlopen(proxy.metrics_url + "/readyz", timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def refused(addr):
    try:
        socket.create_connection(addr, timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def record_for(proxy, path_prefix):
    recs = [r for r in proxy.audit_records() if r["audit"]["path"].startswith(path_prefix)]
    assert len(recs) == 1, proxy.audit_records()
    return recs[0]


def peer_closed(sock, timeout=3.0):
    return clients.wait_closed(sock, timeout) is not None


@pytest.mark.parametrize("route", ["https-h1", "https-h2", "tunnel-h1", "tunnel-h2", "http"])
def test_drain_lets_download_finish(proxy_factory, raw_tls, raw_plain, ca_cert, route):
    p = start_proxy(proxy_factory, raw_tls)
    up = raw_plain if route == "http" else raw_tls
    path = f"/paced/{12 * MIB}?rate={6 * MIB}"  # about 2 s
    t, out = in_background(lambda: fetch(p, route, raw_tls, raw_plain, path, cacert=ca_cert))
    assert wait_until(lambda: up.sent_for(path.split("?")[0]) >= MIB), "transfer did not start"
    os.kill(p.pid, signal.SIGINT if route == "http" else signal.SIGTERM)
    # Out of rotation at once, and no new connection is accepted on any listener.
    assert wait_until(lambda: readyz_status(p) == 503, timeout=2), "/readyz did not turn 503"
    assert p.alive(), "exited with a transfer in flight"
    for listener in ("http", "https", "tunnel"):
        assert wait_until(lambda: refused(p.addr(listener)), timeout=2), f"{listener} listener still accepts"
    t.join(30)
    r = out["result"]
    assert r.exit_code == 0 and r.size_download == 12 * MIB, r
    assert p.proc.wait(15) == 0
    rec = record_for(p, "/paced/")
    assert (rec["audit"]["action"], rec["audit"]["status_code"]) == ("allow", 200), rec
    assert "error" not in rec, rec


def read_response(s):
    """One HTTP/1.1 response with a Content-Length body from socket `s`: (head, body)."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, body
        body += chunk
    return head, body


def test_response_finished_during_drain_closes_the_connection(proxy_factory, raw_tls, ca_cert):
    p = start_proxy(proxy_factory, raw_tls)
    s = clients.tls_wrap(socket.create_connection(p.addr("https"), timeout=10), "allowed.test", ca_cert)
    host = f"allowed.test:{raw_tls.port}"
    try:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head, body = read_response(s)
        assert b"connection: close" not in head.lower() and body == b"raw upstream\n", head
        # The next request on the kept-alive connection waits for its response head (1 s).
        s.sendall(f"GET /paced/1000?delay=1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert wait_until(lambda: "/paced/1000" in raw_tls.requests, timeout=5)
        os.kill(p.pid, signal.SIGTERM)
        head, body = read_response(s)
        assert clients.status_of(head) == 200 and len(body) == 1000, head
        assert b"\r\nconnection: close" in head.lower(), head
        assert peer_closed(s), "connection left open after its last response"
    finally:
        s.close()
    assert p.proc.wait(10) == 0


def test_http2_drain_sends_goaway_and_finishes_streams(proxy_factory, raw_tls, ca_cert):
    p = start_proxy(proxy_factory, raw_tls)
    path = f"/paced/{4 * MIB}?rate={2 * MIB}"
    port = p.https_port
    t, out = in_background(lambda: clients.nghttp([f"https://127.0.0.1:{port}{path}"], extra=["-v"],
                                                  authority=f"allowed.test:{port}", cafile=ca_cert))
    assert wait_until(lambda: raw_tls.sent_for(f"/paced/{4 * MIB}") >= MIB)
    os.kill(p.pid, signal.SIGTERM)
    t.join(30)
    r = out["result"]
    # nghttp2 (a real client) sees GOAWAY(NO_ERROR) and still gets the whole stream.
    assert re.search(r"recv GOAWAY frame.*\n.*error_code=NO_ERROR", r.stdout), r
    assert r.exit_code == 0 and r.rows == [(13, 200, "4M", path)], r
    assert p.proc.wait(10) == 0
    rec = record_for(p, "/paced/")
    assert rec["audit"]["action"] == "allow" and "error" not in rec, rec


@pytest.mark.parametrize("route", ["https-h1", "https-h2", "tunnel-h1"])
def test_drain_timeout_cuts_and_audits_the_bytes(proxy_factory, raw_tls, raw_plain, ca_cert, route):
    p = start_proxy(proxy_factory, raw_tls, shutdown_timeout="1s")
    path = f"/paced/{48 * MIB}?rate={4 * MIB}"  # 12 s: longer than the timeout
    t, out = in_background(lambda: fetch(p, route, raw_tls, raw_plain, path, cacert=ca_cert))
    assert wait_until(lambda: raw_tls.sent_for("/paced/" + str(48 * MIB)) >= MIB)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGTERM)
    assert p.proc.wait(10) == 0
    assert time.monotonic() - t0 < 6, "shutdown did not honour shutdown_timeout"
    t.join(15)
    r = out["result"]
    assert r.exit_code != 0 and 0 < r.size_download < 48 * MIB, r
    # Written before the process exited: the last audit batch is flushed.
    rec = record_for(p, "/paced/")
    assert rec["level"] == "ERROR" and rec["audit"]["action"] == "error", rec
    assert rec["audit"]["status_code"] == 200, rec  # what the client was sent
    m = CUT.match(rec.get("error", ""))
    assert m, rec
    assert r.size_download <= int(m.group(1)) <= raw_tls.sent_for("/paced/" + str(48 * MIB)), (r, rec)


def test_second_signal_cuts_at_once(proxy_factory, raw_tls, ca_cert):
    p = start_proxy(proxy_factory, raw_tls)  # default 10 s drain
    path = f"/paced/{48 * MIB}?rate={4 * MIB}"
    t, out = in_background(lambda: fetch(p, "https-h1", raw_tls, None, path, cacert=ca_cert))
    assert wait_until(lambda: raw_tls.sent_for("/paced/" + str(48 * MIB)) >= MIB)
    os.kill(p.pid, signal.SIGTERM)
    time.sleep(0.5)
    draining = p.alive()
    t0 = time.monotonic()
    if draining:
        os.kill(p.pid, signal.SIGTERM)
    code = p.proc.wait(10)
    took = time.monotonic() - t0
    t.join(15)
    assert out["result"].exit_code != 0
    # The cut transfer is never audited as a clean 200, whichever way the process ended.
    rec = record_for(p, "/paced/")
    assert rec["audit"]["action"] == "error" and CUT.match(rec.get("error", "")), rec
    assert draining, "exited at the first signal with a transfer in flight"
    assert took < 3, "a second SIGTERM did not exit at once"
    assert code == 128 + signal.SIGTERM, code


def _idle_connections(p, raw_tls, raw_plain, ca_cert):
    """One idle kept-alive connection of each kind (after one exchange), and raw silent ones."""
    conns = []
    c = clients.https_via_listener(p.addr("https"), "allowed.test", ca_cert)
    c.request("GET", "/")
    assert c.getresponse().read() == b"raw upstream\n"
    conns.append(c.sock)
    c = clients.https_via_tunnel(p.addr("tunnel"), "allowed.test", raw_tls.port, ca_cert)
    c.request("GET", "/")
    assert c.getresponse().read() == b"raw upstream\n"
    conns.append(c.sock)
    s = socket.create_connection(p.addr("http"), timeout=5)
    c = clients.SocketHTTPConnection(s, f"allowed.test:{raw_plain.port}")
    c.request("GET", "/")
    assert c.getresponse().read() == b"raw upstream\n"
    conns.append(s)
    h2c = H2Client.connect(p.addr("https"), "allowed.test", ca_cert)
    sid = h2c.request("GET", "/", f"allowed.test:{raw_tls.port}")
    assert h2c.wait(sid).status == 200
    conns.append(h2c.sock)
    for listener in ("http", "https", "tunnel"):
        conns.append(socket.create_connection(p.addr(listener), timeout=5))
    return conns


def test_idle_connections_close_at_once_while_a_transfer_drains(proxy_factory, raw_tls, raw_plain, ca_cert):
    p = start_proxy(proxy_factory, raw_tls)
    idle = _idle_connections(p, raw_tls, raw_plain, ca_cert)
    path = f"/paced/{12 * MIB}?rate={4 * MIB}"  # 3 s
    t, out = in_background(lambda: fetch(p, "https-h1", raw_tls, None, path, cacert=ca_cert))
    assert wait_until(lambda: raw_tls.sent_for("/paced/" + str(12 * MIB)) >= MIB)
    os.kill(p.pid, signal.SIGTERM)
    try:
        for i, s in enumerate(idle):
            assert peer_closed(s, 1.5), f"idle connection {i} not closed at once"
        assert p.alive(), "exited with a transfer in flight"
    finally:
        for s in idle:
            s.close()
    t.join(30)
    assert out["result"].exit_code == 0 and out["result"].size_download == 12 * MIB, out["result"]
    assert p.proc.wait(10) == 0


def test_idle_connections_do_not_delay_exit(proxy_factory, raw_tls, raw_plain, ca_cert):
    p = start_proxy(proxy_factory, raw_tls)
    idle = _idle_connections(p, raw_tls, raw_plain, ca_cert)
    try:
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        assert p.proc.wait(10) == 0
        assert time.monotonic() - t0 < 2, "idle connections held the shutdown"
    finally:
        for s in idle:
            s.close()


def test_websocket_cut_at_shutdown_is_audited(proxy_factory, raw_tls, ca_cert):
    p = start_proxy(proxy_factory, raw_tls, shutdown_timeout="1s")
    raw = socket.create_connection(p.addr("https"), timeout=10)
    s = clients.tls_wrap(raw, "allowed.test", ca_cert)
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: allowed.test:{raw_tls.port}\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    assert clients.status_of(clients.read_head(s)) == 101
    s.sendall(b"hello")
    assert s.recv(5) == b"hello"
    os.kill(p.pid, signal.SIGTERM)
    try:
        assert peer_closed(s, 5), "websocket not cut at the timeout"
    finally:
        s.close()
    assert p.proc.wait(10) == 0
    rec = record_for(p, "/ws")
    assert rec["audit"]["status_code"] == 101 and rec["audit"]["action"] == "error", rec
    assert rec.get("error") == "cut at shutdown after 5 response bytes", rec


@pytest.fixture
def raw_tls_443(upstream_pki):
    try:
        srv = RawUpstream("127.0.0.2", 443, upstream_pki.server_context())
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.2:443 for the sni-only upstream: {e}")
    srv.start()
    yield srv
    srv.stop()


def test_sni_only_relay_cut_at_shutdown_is_audited(proxy_factory, raw_tls_443, upstream_pki):
    p = proxy_factory.start(tls_extra={"mode": "sni-only"}, proxy_extra={"shutdown_timeout": "1s"})
    url = f"https://allowed.test:{p.https_port}/paced/{48 * MIB}?rate={4 * MIB}"
    t, out = in_background(lambda: clients.curl(url, resolve=f"allowed.test:{p.https_port}:127.0.0.1",
                                                cacert=upstream_pki.ca_path, output="/dev/null"))
    assert wait_until(lambda: raw_tls_443.sent_for("/paced/" + str(48 * MIB)) >= MIB)
    os.kill(p.pid, signal.SIGTERM)
    assert p.proc.wait(10) == 0
    t.join(15)
    assert out["result"].exit_code != 0
    [rec] = p.audit_records()
    assert rec["audit"]["mode"] == "sni-only" and rec["audit"]["action"] == "error", rec
    m = CUT.match(rec.get("error", ""))
    assert m and int(m.group(1)) >= out["result"].size_download, (out["result"], rec)
