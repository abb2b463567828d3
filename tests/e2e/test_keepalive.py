"""Connection reuse: many requests on one client connection use one upstream connection."""
import json
import os
import socket

from harness import audit, clients

N = 200


def _run(conn, n):
    for i in range(n):
        conn.request("GET", f"/echo?i={i}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (i, resp.status, body[:200])
        assert json.loads(body)["query"] == f"i={i}"


def test_keepalive_via_https_listener(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    conn = clients.https_via_listener(("127.0.0.1", port), "allowed.test", ca_cert)
    try:
        _run(conn, N)
    finally:
        conn.close()
    assert len(https_upstream.requests_for("/echo")) == N
    assert https_upstream.connections == 1
    recs = proxy.wait_audit(N, timeout=10)
    assert len(recs) == N
    assert all(r["audit"]["status_code"] == 200 for r in recs)


def test_keepalive_via_tunnel(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    conn = clients.https_via_tunnel(proxy.addr("tunnel"), "allowed.test", port, ca_cert)
    try:
        _run(conn, N)
    finally:
        conn.close()
    assert https_upstream.connections == 1
    recs = proxy.wait_audit(N + 1, timeout=10)
    assert len(audit.connect_records(recs)) == 1
    inner = audit.inner_records(recs)
    assert len(inner) == N
    assert all(r["tunnel"]["target"] == f"allowed.test:{port}" for r in inner)


def test_keepalive_via_http_listener(proxy, http_upstream):
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = clients.SocketHTTPConnection(sock, f"allowed.test:{http_upstream.port}")
    try:
        _run(conn, N)
    finally:
        conn.close()
    assert http_upstream.connections == 1


def test_separate_clients_reuse_pooled_upstream_connection(proxy, https_upstream, ca_cert):
    """Sequential curl runs (a new client connection each) reuse pooled upstream connections.
    Pools may be per worker thread (one per core), so allow one upstream connection per core."""
    port = https_upstream.port
    n = 8
    for _ in range(n):
        r = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                         cacert=ca_cert)
        assert r.http_code == 200, r
    assert 1 <= https_upstream.connections <= min(os.cpu_count() or 1, n - 1), \
        f"{https_upstream.connections} upstream connections for {n} sequential requests"


def test_client_connection_close_keeps_pooled_upstream_connection(proxy, https_upstream, ca_cert):
    """A client that closes after each request (`Connection: close`, as load generators and many
    scripts do) ends its own connection only: the origin's connection goes back to the pool.
    The proxy once rewrote the origin's response head in place for the client and then read the
    client's `Connection: close` back as the origin's, so every such request dialled and
    TLS-handshook a new upstream connection."""
    port = https_upstream.port
    n = 8
    for _ in range(n):
        r = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                         cacert=ca_cert, headers=("Connection: close",), extra=("--http1.1",))
        assert r.http_code == 200, r
    assert 1 <= https_upstream.connections <= min(os.cpu_count() or 1, n - 1), \
        f"{https_upstream.connections} upstream connections for {n} sequential `Connection: close` requests"
