"""Self-tests of the HTTP/2 and gRPC fixtures, with no proxy involved (like test_harness.py): the
h2 upstream against curl --http2, nghttp and harness/h2_client.py; the raw client's malformed
requests against nghttpd (a conforming server must reset every one of them, so the smuggling tests
in test_http2.py send what they claim to); the gRPC upstream directly and through a minimal
CONNECT relay (so grpc.http_proxy works as test_grpc.py uses it)."""
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

from harness import clients
from harness.h2_client import MALFORMED_HEADERS, PROTOCOL_ERROR, SMUGGLE_BODY, H2Client, assert_rejected
from harness.paths import clean_env
from harness.serving import start_accepting
from harness.upstream import bind_paired

pytestmark = pytest.mark.timeout(60)


def _direct(upstream):
    return dict(resolve=f"allowed.test:{upstream.port}:127.0.0.2")


def test_h2_upstream_echo_with_curl(h2_upstream, upstream_pki):
    port = h2_upstream.port
    r = clients.curl(f"https://allowed.test:{port}/echo/x?a=1", **_direct(h2_upstream),
                     cacert=upstream_pki.ca_path, method="POST", data="hello", headers=["X-Test: yes"],
                     extra=["--http2"])
    assert r.http_code == 200 and r.info.get("http_version") == "2", r
    echo = r.json()
    assert (echo["method"], echo["path"], echo["query"], echo["body"]) == ("POST", "/echo/x", "a=1", "hello")
    assert echo["authority"] == f"allowed.test:{port}" and echo["alpn"] == "h2"
    assert ["x-test", "yes"] in echo["headers"]
    assert h2_upstream.connections == 1 and h2_upstream.non_h2 == 0


def test_h2_upstream_refuses_http1_clients(h2_upstream, upstream_pki):
    r = clients.curl(f"https://allowed.test:{h2_upstream.port}/echo", **_direct(h2_upstream),
                     cacert=upstream_pki.ca_path, extra=["--http1.1"])
    assert r.http_code == 0, r
    assert h2_upstream.non_h2 == 1 and not h2_upstream.requests


def test_h2_upstream_bytes_and_sink(h2_upstream, upstream_pki, tmp_path):
    port = h2_upstream.port
    n = 5_000_003
    r = clients.curl(f"https://allowed.test:{port}/bytes/{n}", **_direct(h2_upstream),
                     cacert=upstream_pki.ca_path, extra=["--http2"])
    assert r.http_code == 200 and len(r.body) == n and r.body[:16] == b"0123456789abcdef", r
    f = tmp_path / "up.bin"
    f.write_bytes(b"z" * 3_000_001)
    r = clients.curl(f"https://allowed.test:{port}/sink", **_direct(h2_upstream), cacert=upstream_pki.ca_path,
                     method="POST", extra=["--http2", "-T", str(f)])
    assert r.json() == {"length": 3_000_001}, r
    [rec] = h2_upstream.requests_for("/sink")
    assert rec["body_length"] == 3_000_001 and rec["body"] == ""


def test_h2_upstream_trailers_stream_reset_with_h2_client(h2_upstream, upstream_pki):
    port = h2_upstream.port
    auth = f"allowed.test:{port}"
    with H2Client.connect(("127.0.0.2", port), "allowed.test", upstream_pki.ca_path) as c:
        t = c.request("GET", "/trailers", auth)
        s = c.request("GET", "/stream?n=3&every=0.1", auth)
        rst = c.request("GET", "/reset", auth)
        echo = c.request("POST", "/echo/t", auth, body=b"abc", trailers=[("x-req", "1")])
        res_t, res_s, res_rst, res_echo = c.wait_all([t, s, rst, echo])
        assert dict(res_t.trailers) == {"x-checksum": "sha256-abc123", "x-trailer-two": "2"}, res_t
        assert res_s.ended and len(res_s.chunks) >= 3 and res_s.body.count(b"\n") == 3, res_s
        assert res_rst.reset_code is not None and not res_rst.ended, res_rst
        assert json.loads(res_echo.body)["trailers"] == [["x-req", "1"]]
        # A client reset is recorded by the upstream.
        long = c.request("GET", "/stream?n=50&every=0.1", auth)
        assert c.wait_for(lambda: c.streams[long].received > 0, 5)
        c.reset(long)
        assert c.wait_for(lambda: any(r["path"].startswith("/stream?n=50") for r in h2_upstream.resets), 3)
    assert len(h2_upstream.requests) == 5 and h2_upstream.connections == 1


def test_h2_client_withheld_window_stalls_the_stream(h2_upstream, upstream_pki):
    """What test_stalled_stream_is_flow_controlled_end_to_end relies on, directly."""
    port = h2_upstream.port
    auth = f"allowed.test:{port}"
    with H2Client.connect(("127.0.0.2", port), "allowed.test", upstream_pki.ca_path) as c:
        sid = c.request("GET", f"/bytes/{1 << 30}", auth, withhold=True, keep=False)
        c.wait_for(lambda: False, timeout=0.5)
        side = c.wait(c.request("GET", "/echo/side", auth))
        assert side.status == 200
        assert c.streams[sid].received == 65535
        [prog] = h2_upstream.progress_for("/bytes/")
        assert prog["sent"] == 65535
        c.reset(sid)


def test_nghttp_against_h2_upstream(h2_upstream, upstream_pki):
    port = h2_upstream.port
    res = clients.nghttp([f"https://127.0.0.2:{port}/echo/n"], authority=f"allowed.test:{port}",
                         cafile=upstream_pki.ca_path, extra=["-m", "5"])
    assert res.exit_code == 0 and clients.nghttp_verified(res), res
    assert [row[1] for row in res.rows] == [200] * 5, res
    assert len(h2_upstream.requests_for("/echo/n")) == 5
    assert {r["authority"] for r in h2_upstream.requests} == {f"allowed.test:{port}"}
    bad = clients.nghttp([f"https://127.0.0.2:{port}/echo/n"], authority=f"allowed.test:{port}")
    assert not clients.nghttp_verified(bad), "nghttp trusted the upstream CA without SSL_CERT_FILE"


@pytest.fixture
def nghttpd(upstream_pki, tmp_path):
    """nghttpd (nghttp2-server) on 127.0.0.2: a conforming HTTP/2 server serving tmp_path/docroot."""
    if not shutil.which("nghttpd"):
        pytest.skip("nghttpd (nghttp2-server) not installed")
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    (docroot / "ok").write_text("ok\n")
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(["nghttpd", "-d", str(docroot), "--address=127.0.0.2", str(port),
                             str(upstream_pki.server.key_path), str(upstream_pki.server.cert_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=clean_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.2", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "nghttpd did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_raw_h2_client_malformed_requests_are_reset_by_nghttpd(nghttpd, upstream_pki):
    cases = [[("content-type", "text/plain"), h] for h in MALFORMED_HEADERS.values()]
    cases += [[("content-type", "text/plain"), ("content-length", "10")],
              [("content-type", "text/plain"), ("content-length", "5")]]
    bodies = [SMUGGLE_BODY] * len(MALFORMED_HEADERS) + [b"x" * 5, b"x" * 10]
    with H2Client.connect(("127.0.0.2", nghttpd), "allowed.test", upstream_pki.ca_path, raw=True) as c:
        for headers, body in zip(cases, bodies):
            res = c.wait(c.request("POST", "/ok", f"allowed.test:{nghttpd}", headers=headers, body=body))
            assert res.status == 0 and res.reset_code == PROTOCOL_ERROR, (headers, res)
            assert_rejected(c, res)
            ok = c.wait(c.request("GET", "/ok", f"allowed.test:{nghttpd}"))
            assert ok.status == 200 and bytes(ok.body) == b"ok\n", ok


# --- gRPC -------------------------------------------------------------------------------------------

@pytest.fixture
def grpc_direct(upstream_pki):
    pytest.importorskip("grpc")
    from harness.grpc_upstream import GrpcUpstream
    srv = bind_paired(lambda port: GrpcUpstream("127.0.0.2", port, upstream_pki.server.cert_path,
                                                upstream_pki.server.key_path), "127.0.0.1")
    srv.start()
    yield srv
    srv.stop()


class _ConnectRelay:
    """Minimal CONNECT proxy on 127.0.0.1 relaying to 127.0.0.2:<port> (for the gRPC self-test)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.heads = []
        self.stopping = threading.Event()
        self.thread = start_accepting(self.sock, self.stopping, self._serve, "connect-relay")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self, c):
        c.settimeout(10)
        head = clients.read_head(c)
        self.heads.append(head)
        port = int(head.split(b" ")[1].rsplit(b":", 1)[1])
        u = socket.create_connection(("127.0.0.2", port), timeout=10)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a, b):
            try:
                for _ in range(1_000_000):
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        pipe(c, u)

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.thread.join(5)


def test_grpc_upstream_directly_and_through_a_connect_relay(grpc_direct, upstream_pki):
    import grpc

    from harness.grpc_upstream import FAIL_MESSAGE, Stubs, channel

    port = grpc_direct.port
    direct = channel(f"127.0.0.2:{port}", upstream_pki.ca_path, server_name="allowed.test",
                     authority=f"allowed.test:{port}")
    relay = _ConnectRelay()
    tunnelled = channel(f"allowed.test:{port}", upstream_pki.ca_path, http_proxy=relay.url)
    try:
        for ch in (direct, tunnelled):
            grpc.channel_ready_future(ch).result(timeout=10)
            s = Stubs(ch)
            assert s.unary(b"hi", timeout=10, metadata=[("authorization", "Bearer x")]) == b"hi"
            assert list(s.server_stream(b"100", timeout=10)) == [b"message %d" % i for i in range(100)]
            assert s.client_stream(iter([b"ab"] * 10), timeout=10) == b"10 20"
            assert list(s.bidi(iter([b"m%d" % i for i in range(100)]), timeout=10)) == [
                b"m%d" % i for i in range(100)]
            with pytest.raises(grpc.RpcError) as e:
                s.fail(b"", timeout=10)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND and e.value.details() == FAIL_MESSAGE
            assert ("x-detail", "widget-42") in [(m.key, m.value) for m in e.value.trailing_metadata()]
    finally:
        direct.close()
        tunnelled.close()
        relay.stop()
    assert relay.heads and relay.heads[0].startswith(f"CONNECT allowed.test:{port} HTTP/1.1".encode())
    unary = grpc_direct.calls_for("Unary")
    assert len(unary) == 2 and dict(unary[0]["metadata"])["authorization"] == "Bearer x"
