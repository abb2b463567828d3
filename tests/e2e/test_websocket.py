"""WebSocket through the MITM (issue 5): the handshake runs the request pipeline,
then frames are relayed untouched both ways. Real clients: python3-websockets over the tunnel
(CONNECT) and over the HTTPS listener, against a local wss:// echo upstream."""
import asyncio
import socket
import ssl
import threading

import pytest

websockets = pytest.importorskip("websockets")
from websockets.exceptions import InvalidStatusCode  # noqa: E402

from harness import audit  # noqa: E402


class EchoServer:
    """wss:// echo server on 127.0.0.2:<port> in its own thread and event loop."""

    def __init__(self, upstream_pki, port=0):
        self.ctx = upstream_pki.server_context()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = port
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "echo server did not start"

    async def _echo(self, ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            websockets.serve(self._echo, "127.0.0.2", self.port, ssl=self.ctx, max_size=4 << 20))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _free_on_both(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture
def echo_server(upstream_pki):
    for _ in range(20):
        srv = EchoServer(upstream_pki)
        if _free_on_both(srv.port):
            break
        srv.stop()
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    yield srv
    srv.stop()


def _client_ctx(ca_cert):
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    return ctx


def _tunnel_socket(tunnel_port, target):
    s = socket.create_connection(("127.0.0.1", tunnel_port), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    return s, head


async def _exercise(uri, sock, ca_cert, server_hostname):
    async with websockets.connect(uri, sock=sock, ssl=_client_ctx(ca_cert), server_hostname=server_hostname,
                                  max_size=4 << 20, open_timeout=10, close_timeout=5) as ws:
        for i in range(1000):
            await ws.send(f"message {i}")
            assert await asyncio.wait_for(ws.recv(), 10) == f"message {i}"
        big = bytes(range(256)) * 4096  # 1 MiB
        await ws.send(big)
        assert await asyncio.wait_for(ws.recv(), 20) == big
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        await ws.close()
        assert ws.close_code == 1000


def test_websocket_through_tunnel(proxy, echo_server, ca_cert):
    target = f"allowed.test:{echo_server.port}"
    sock, head = _tunnel_socket(proxy.tunnel_port, target)
    assert head.startswith(b"HTTP/1.1 200"), head
    asyncio.run(_exercise(f"wss://{target}/chat", sock, ca_cert, "allowed.test"))
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    a = inner["audit"]
    assert a["status_code"] == 101, inner
    assert a["action"] == "allow"
    assert a["path"] == "/chat"
    # The record is written when the session ends, so its duration covers the whole session.
    assert a["duration_ms"] > 5


def test_websocket_through_https_listener(proxy_factory, echo_server, ca_cert):
    p = proxy_factory.start(https_listen=f"127.0.0.1:{echo_server.port}")
    sock = socket.create_connection(("127.0.0.1", echo_server.port), timeout=10)
    asyncio.run(_exercise(f"wss://allowed.test:{echo_server.port}/", sock, ca_cert, "allowed.test"))
    [rec] = p.wait_audit(1)
    assert rec["audit"]["status_code"] == 101
    assert rec["audit"]["sni"] == "allowed.test"


def test_websocket_to_an_origin_offering_h2_goes_over_http11(proxy_factory, echo_server, ca_cert):
    """Plain requests from HTTP/1.1 clients offer h2 to TLS origins; an upgrade must not (no
    RFC 8441 WebSockets over HTTP/2 here): it is dialled with ALPN http/1.1 alone, so an origin
    that would pick h2 when offered still gets the handshake in HTTP/1.1."""
    echo_server.ctx.set_alpn_protocols(["h2", "http/1.1"])
    p = proxy_factory.start(https_listen=f"127.0.0.1:{echo_server.port}")
    sock = socket.create_connection(("127.0.0.1", echo_server.port), timeout=10)
    asyncio.run(_exercise(f"wss://allowed.test:{echo_server.port}/h2-offered", sock, ca_cert, "allowed.test"))
    [rec] = p.wait_audit(1)
    assert rec["audit"]["status_code"] == 101 and rec["audit"]["path"] == "/h2-offered", rec


def test_websocket_denied_host_gets_403_at_handshake(proxy, echo_server, ca_cert):
    # The CONNECT to an allowed name succeeds, but the inner Host is not allowlisted.
    target = f"allowed.test:{echo_server.port}"
    sock, head = _tunnel_socket(proxy.tunnel_port, target)
    assert head.startswith(b"HTTP/1.1 200"), head

    async def attempt():
        ctx = _client_ctx(ca_cert)
        # SNI and Host both say denied.test: the leaf is minted for it, the allowlist refuses it.
        await websockets.connect(f"wss://denied.test:{echo_server.port}/", sock=sock, ssl=ctx,
                                 server_hostname="denied.test", open_timeout=10)

    with pytest.raises(InvalidStatusCode) as e:
        asyncio.run(attempt())
    assert e.value.status_code == 403
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    assert inner["audit"]["action"] == "reject"
    assert inner["rejected_by"] == "allowlist"


def test_websocket_upgrade_refused_by_origin_passes_through(proxy, http_upstream):
    # A plain HTTP origin that ignores Upgrade answers 200: passed through, no tunnel.
    s = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: allowed.test:%d\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
              % http_upstream.port)
    data = s.recv(65536)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["status_code"] == 200
