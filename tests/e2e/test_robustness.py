"""Misbehaving clients: silent connections are dropped after client_header_timeout, slow or
garbage-sending clients do not stop the proxy serving others (Go has no client timeouts)."""
import os
import random
import re
import socket
import threading
import time

import pytest

from harness import clients

TIMEOUTS = {"client_header_timeout": "2s", "client_handshake_timeout": "2s"}


@pytest.fixture
def timed_proxy(proxy_factory, https_upstream):
    return proxy_factory.start(https_listen=f"127.0.0.1:{https_upstream.port}",
                               proxy_extra=dict(TIMEOUTS))


@pytest.mark.parametrize("listener", ["http", "https", "tunnel"])
def test_silent_client_is_disconnected(timed_proxy, listener):
    sock = socket.create_connection(timed_proxy.addr(listener), timeout=10)
    try:
        took = clients.wait_closed(sock, timeout=10)
    finally:
        sock.close()
    assert took is not None, f"{listener}: a client that sent nothing was still connected after 10 s"
    assert took >= 1.5, f"{listener}: disconnected after {took:.2f} s, before the 2 s timeout"


@pytest.mark.parametrize("listener", ["http", "tunnel"])
def test_slowloris_partial_head_is_disconnected(timed_proxy, listener):
    sock = socket.create_connection(timed_proxy.addr(listener), timeout=10)
    try:
        first = b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: all" if listener == "tunnel" \
            else b"GET / HTTP/1.1\r\nHost: allowed.te"
        sock.sendall(first)
        start = time.monotonic()
        # Trickle one byte a second; the header deadline must still fire.
        closed = None
        for _ in range(10):
            try:
                sock.sendall(b"x")
            except OSError:
                closed = time.monotonic() - start
                break
            took = clients.wait_closed(sock, timeout=1.0)
            if took is not None:
                closed = time.monotonic() - start
                break
    finally:
        sock.close()
    assert closed is not None, f"{listener}: slowloris client still connected after ~10 s"


def test_idle_keepalive_connection_is_closed(proxy_factory, http_upstream):
    proxy = proxy_factory.start(proxy_extra={"client_idle_timeout": "2s"})
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    try:
        conn = clients.SocketHTTPConnection(sock, f"allowed.test:{http_upstream.port}")
        conn.request("GET", "/echo")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        took = clients.wait_closed(sock, timeout=10)
    finally:
        sock.close()
    assert took is not None, "idle keep-alive connection still open after 10 s"


def _garbage_sender(addr, stop, errors):
    rnd = random.Random(1234)
    deadline = time.monotonic() + 10
    sent_conns = 0
    while not stop.is_set() and time.monotonic() < deadline and sent_conns < 200:
        try:
            s = socket.create_connection(addr, timeout=2)
        except OSError as e:
            errors.append(repr(e))
            time.sleep(0.05)
            continue
        sent_conns += 1
        try:
            for _ in range(rnd.randint(1, 20)):
                s.sendall(os.urandom(rnd.randint(1, 4096)))
        except OSError:
            pass
        finally:
            s.close()


def test_garbage_clients_do_not_block_others(proxy, https_upstream, http_upstream, ca_cert):
    stop = threading.Event()
    errors = []
    senders = [threading.Thread(target=_garbage_sender, args=(proxy.addr(l), stop, errors),
                                daemon=True) for l in ("http", "https", "tunnel")]
    for t in senders:
        t.start()
    try:
        port = https_upstream.port
        for i in range(5):
            r = clients.curl(f"https://allowed.test:{port}/echo", proxy=proxy.tunnel_url,
                             cacert=ca_cert, max_time=10)
            assert r.http_code == 200, (i, str(r))
            r = clients.curl(f"https://allowed.test:{port}/echo",
                             resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert, max_time=10)
            assert r.http_code == 200, (i, str(r))
            r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo",
                             headers=[f"Host: allowed.test:{http_upstream.port}"], max_time=10)
            assert r.http_code == 200, (i, str(r))
    finally:
        stop.set()
        for t in senders:
            t.join(timeout=15)
    assert proxy.alive()
    assert not errors, f"garbage senders could not even connect: {errors[:3]}"


def test_many_idle_connections_do_not_block_others(proxy, https_upstream, ca_cert):
    idle = []
    try:
        for l in ("http", "https", "tunnel"):
            for _ in range(30):
                idle.append(socket.create_connection(proxy.addr(l), timeout=5))
        t0 = time.monotonic()
        r = clients.curl(f"https://allowed.test:{https_upstream.port}/echo", proxy=proxy.tunnel_url,
                         cacert=ca_cert, max_time=10)
        assert r.http_code == 200, r
        assert time.monotonic() - t0 < 5
    finally:
        for s in idle:
            s.close()


def test_client_abort_mid_download_keeps_proxy_healthy(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    conn = clients.https_via_tunnel(proxy.addr("tunnel"), "allowed.test", port, ca_cert)
    try:
        conn.request("GET", f"/bytes/{50 * 1024 * 1024}")
        resp = conn.getresponse()
        assert resp.status == 200
        got = 0
        while got < 1024 * 1024:
            chunk = resp.read(65536)
            if not chunk:
                break
            got += len(chunk)
        assert got >= 1024 * 1024
    finally:
        conn.close()  # abort with ~49 MiB still to come
    for _ in range(3):
        r = clients.curl(f"https://allowed.test:{port}/echo", proxy=proxy.tunnel_url, cacert=ca_cert)
        assert r.http_code == 200, r
    assert proxy.alive()
    # The aborted request is audited too: the client left (client_cancel, the 200 it was sent), and
    # the error says how far the download got, never a clean allow.
    recs = proxy.wait_audit(8)
    big = [r for r in recs if r["audit"]["path"].startswith("/bytes/")]
    assert len(big) == 1, recs
    assert big[0]["audit"]["action"] == "client_cancel" and big[0]["audit"]["status_code"] == 200, big
    assert re.fullmatch(r"writing response body: .+ after \d+ response bytes", big[0].get("error", "")), big
