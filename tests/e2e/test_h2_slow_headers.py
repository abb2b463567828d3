"""HTTP/2 slow headers: a client that sends its connection preface, its first SETTINGS frame or a
header block (HEADERS, then CONTINUATION frames) too slowly is cut at client_header_timeout with
GOAWAY(ENHANCE_YOUR_CALM); a connection with no open stream is closed at client_idle_timeout; a
stream that is open and slow is cut by neither. Checked on the HTTPS listener (TLS, ALPN h2), inside
a CONNECT tunnel (h2 after the MITM), and for cleartext HTTP/2 with prior knowledge on the plain
listener and inside a tunnel.

The clients are raw sockets writing hand-built frames (header blocks encoded with hpack) one byte
or one frame at a time, so every byte is valid HTTP/2 and only the pace is wrong. Each drip lasts
longer than the bound it checks: a proxy without the deadline is seen still holding the connection.
An origin dripping its response HEADERS is bounded by upstream_response_header_timeout (504).
"""
import socket
import ssl
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events
import hpack
import pytest

from harness import clients
from harness.h2_client import H2Client
from harness.h2_upstream import h2_server_context
from harness.serving import start_accepting

HEAD_TIMEOUT = 1.0
IDLE_TIMEOUT = 2.0
SLACK = 5.0                          # "did not hang": a generous bound past the timeout
DRIP_LIMIT = HEAD_TIMEOUT + SLACK + 2.0
DRIP_EVERY = 0.5                     # one byte per DRIP_EVERY seconds
CONTINUATION_EVERY = 1.0             # fewer than 8 frames in DRIP_LIMIT (nghttp2's own CONTINUATION cap)
LISTENERS = ["https", "tunnel", "h2c", "h2c-tunnel"]

ENHANCE_YOUR_CALM = 0xb
NO_ERROR = 0x0
T_HEADERS, T_SETTINGS, T_GOAWAY, T_CONTINUATION = 0x1, 0x4, 0x7, 0x9
F_END_STREAM, F_END_HEADERS = 0x1, 0x4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

pytestmark = pytest.mark.timeout(60)


# --- frames -------------------------------------------------------------------------------------

def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def settings_frame():
    """A valid SETTINGS frame long enough (27 bytes) that dripping it outlasts DRIP_LIMIT."""
    entries = [(0x1, 4096), (0x2, 0), (0x4, 65535)]  # HEADER_TABLE_SIZE, ENABLE_PUSH, INITIAL_WINDOW_SIZE
    return frame(T_SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in entries))


def request_block(encoder, listener, path):
    scheme = "http" if listener.startswith("h2c") else "https"
    port = 80 if scheme == "http" else 443
    return encoder.encode([(":method", "GET"), (":scheme", scheme), (":authority", f"allowed.test:{port}"),
                           (":path", path), ("user-agent", "slow-headers-test")])


def goaway_codes(received: bytes):
    """Error codes of the GOAWAY frames in what the proxy sent (its frames, in order)."""
    codes, i = [], 0
    while i + 9 <= len(received):
        length = int.from_bytes(received[i:i + 3], "big")
        if received[i + 3] == T_GOAWAY and i + 9 + 8 <= len(received):
            codes.append(int.from_bytes(received[i + 13:i + 17], "big"))
        i += 9 + length
    return codes


# --- a raw HTTP/2 client connection -------------------------------------------------------------

class RawConn:
    """A TLS (ALPN h2) or cleartext socket to the proxy; remembers whether and when it closed."""

    def __init__(self, sock):
        self.sock = sock
        self.received = b""
        self.closed = False

    def send(self, data) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            self.closed = True
            return False

    def wait_closed(self, seconds) -> bool:
        """Reads (keeping the bytes) for up to `seconds`; True once the proxy closed."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.02, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                self.closed = True
                break
            if not data:
                self.closed = True
            self.received += data
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_conn(proxy, listener, cafile) -> RawConn:
    if listener == "https":
        sock = socket.create_connection(proxy.addr("https"), timeout=10)
    elif listener in ("tunnel", "h2c-tunnel"):
        target = "allowed.test:443" if listener == "tunnel" else "allowed.test:80"
        sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), target)
        assert status == 200, head
    else:
        sock = socket.create_connection(proxy.addr("http"), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if listener in ("https", "tunnel"):
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.set_alpn_protocols(["h2"])
        sock.settimeout(10)
        sock = ctx.wrap_socket(sock, server_hostname="allowed.test")
        assert sock.selected_alpn_protocol() == "h2"
    return RawConn(sock)


def drip(conn, chunks, every, limit=DRIP_LIMIT):
    """Sends `chunks` one every `every` seconds until the proxy closes the connection. Returns the
    seconds from the first chunk to the close, or None if still open after `limit` seconds."""
    start = time.monotonic()
    for chunk in chunks:
        if time.monotonic() - start > limit:
            return None
        if not conn.send(chunk) or conn.wait_closed(every):
            return time.monotonic() - start
    left = limit - (time.monotonic() - start)
    return time.monotonic() - start if left > 0 and conn.wait_closed(left) else None


def one_byte_at_a_time(data):
    return [data[i:i + 1] for i in range(len(data))]


def assert_dripped_and_cut(proxy, listener, cafile, what, opening, chunks, every=DRIP_EVERY,
                           code=ENHANCE_YOUR_CALM):
    """Opens a connection, sends `opening` whole, then `chunks` one every `every` seconds: the
    proxy must close it within the head deadline (plus slack), after a GOAWAY(code) unless code is
    None."""
    conn = open_conn(proxy, listener, cafile)
    try:
        assert not opening or conn.send(opening)
        took = drip(conn, chunks, every)
    finally:
        conn.close()
    bound = HEAD_TIMEOUT + SLACK
    assert took is not None, f"{listener}: {what}: connection still open after {DRIP_LIMIT:.0f} s"
    assert took <= bound, f"{listener}: {what}: closed only after {took:.1f} s"
    assert code is None or code in goaway_codes(conn.received), \
        f"{listener}: {what}: no GOAWAY({code}) before the close: {conn.received[-80:]!r}"


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def head_proxy(proxy_factory):
    """client_header_timeout 1 s, and an idle timeout far away so only the head deadline can cut."""
    return proxy_factory.start(proxy_extra={"client_header_timeout": "1s", "client_idle_timeout": "60s"})


@pytest.fixture
def idle_proxy(proxy_factory):
    return proxy_factory.start(proxy_extra={"client_header_timeout": "1s", "client_idle_timeout": "2s"})


def head_timeout_records(proxy, n=1):
    return proxy.wait_audit(n, predicate=lambda r: r["audit"]["status_code"] == 408, timeout=5 if n else 0)


# --- the head deadline --------------------------------------------------------------------------

@pytest.mark.parametrize("listener", LISTENERS)
def test_dripped_preface_is_cut(head_proxy, ca_cert, listener):
    """The connection preface and the SETTINGS frame after it, one byte every 0.5 s."""
    # In cleartext the listener reads the preface itself (h2c or HTTP/1.1?) and drops a client
    # too slow at it without a word: HTTP/2 is not spoken yet, so no GOAWAY.
    code = None if listener.startswith("h2c") else ENHANCE_YOUR_CALM
    assert_dripped_and_cut(head_proxy, listener, ca_cert, "dripped preface", b"",
                           one_byte_at_a_time(PREFACE + settings_frame()), code=code)


@pytest.mark.parametrize("listener", LISTENERS)
def test_dripped_first_settings_is_cut(head_proxy, ca_cert, listener):
    """A whole preface, then the first SETTINGS frame one byte every 0.5 s."""
    assert_dripped_and_cut(head_proxy, listener, ca_cert, "dripped SETTINGS", PREFACE,
                           one_byte_at_a_time(settings_frame()))
    assert not head_timeout_records(head_proxy, 0)  # no request began: nothing to audit


@pytest.mark.parametrize("listener", LISTENERS)
def test_dripped_headers_frame_is_cut(head_proxy, ca_cert, listener):
    """A complete opening, then a request's HEADERS frame one byte every 0.5 s from its first
    byte. The deadline passes inside the 9-byte frame header: nothing says yet that a request
    began, so nothing is audited."""
    block = request_block(hpack.Encoder(), listener, "/echo/dripped-headers")
    headers = frame(T_HEADERS, F_END_STREAM | F_END_HEADERS, 1, block)
    assert_dripped_and_cut(head_proxy, listener, ca_cert, "dripped HEADERS", PREFACE + settings_frame(),
                           one_byte_at_a_time(headers))
    assert not head_timeout_records(head_proxy, 0)


@pytest.mark.parametrize("listener", LISTENERS)
def test_dripped_header_block_is_cut_and_audited(head_proxy, ca_cert, listener):
    """The HEADERS frame header whole (a request on stream 1 began), its header block one byte
    every 0.5 s: cut, and audited like an HTTP/1.1 request head cut by the same deadline (408)."""
    block = request_block(hpack.Encoder(), listener, "/echo/dripped-block")
    headers = frame(T_HEADERS, F_END_STREAM | F_END_HEADERS, 1, block)
    assert_dripped_and_cut(head_proxy, listener, ca_cert, "dripped header block",
                           PREFACE + settings_frame() + headers[:9], one_byte_at_a_time(headers[9:]))
    [rec] = head_timeout_records(head_proxy)
    a = rec["audit"]
    assert a["action"] == "reject" and rec["error"] == "timeout reading request header", rec
    assert a["path"] == "" and a["method"] == "", rec  # nothing of the unfinished head is trusted
    if listener.endswith("tunnel"):
        assert rec["tunnel"]["target"].startswith("allowed.test:"), rec


@pytest.mark.parametrize("listener", LISTENERS)
def test_header_block_never_ending_is_cut(head_proxy, ca_cert, listener):
    """HEADERS without END_HEADERS, then one small CONTINUATION a second, never the last."""
    enc = hpack.Encoder()
    first = frame(T_HEADERS, F_END_STREAM, 1, request_block(enc, listener, "/echo/endless-block"))
    more = [frame(T_CONTINUATION, 0, 1, enc.encode([(f"x-pad-{i}", "v")])) for i in range(7)]
    assert_dripped_and_cut(head_proxy, listener, ca_cert, "endless header block", PREFACE + settings_frame(),
                           [first, *more], every=CONTINUATION_EVERY)
    [rec] = head_timeout_records(head_proxy)
    assert rec["error"] == "timeout reading request header", rec


@pytest.mark.parametrize("listener", ["https", "h2c"])
def test_whole_frames_with_pauses_are_not_cut(head_proxy, ca_cert, listener):
    """Whole frames sent with pauses longer than the head deadline between them: nothing is cut
    (the deadline bounds an unfinished frame or block, not the time between them)."""
    conn = open_conn(head_proxy, listener, ca_cert)
    try:
        assert conn.send(PREFACE + settings_frame() + frame(T_SETTINGS, 0x1, 0))  # + ACK of theirs
        for _ in range(2):
            assert not conn.wait_closed(HEAD_TIMEOUT * 1.5), f"{listener}: cut between frames"
            assert conn.send(frame(0x6, 0, 0, b"12345678"))  # PING
    finally:
        conn.close()


# --- the idle deadline --------------------------------------------------------------------------

@pytest.mark.parametrize("listener", LISTENERS)
def test_idle_connection_without_stream_is_closed(idle_proxy, ca_cert, listener):
    conn = open_conn(idle_proxy, listener, ca_cert)
    try:
        assert conn.send(PREFACE + settings_frame())
        start = time.monotonic()
        closed = conn.wait_closed(IDLE_TIMEOUT + SLACK)
        took = time.monotonic() - start
    finally:
        conn.close()
    assert closed, f"{listener}: idle HTTP/2 connection still open after {IDLE_TIMEOUT + SLACK:.0f} s"
    assert took >= IDLE_TIMEOUT - 0.5, f"{listener}: closed after {took:.1f} s, before the idle timeout"
    assert NO_ERROR in goaway_codes(conn.received), f"{listener}: no GOAWAY(NO_ERROR) before the idle close"


# --- slow but active streams are not cut ----------------------------------------------------------

@pytest.mark.parametrize("listener", ["https", "tunnel"])
def test_slow_stream_outlives_both_deadlines(proxy_factory, h2_upstream, ca_cert, listener):
    """Server streaming with 2 s pauses, longer than the 1 s head and idle deadlines."""
    port = h2_upstream.port
    p = proxy_factory.start(https_listen=f"127.0.0.1:{port}",
                            proxy_extra={"client_header_timeout": "1s", "client_idle_timeout": "1s"})
    if listener == "tunnel":
        c = H2Client.via_tunnel(p.addr("tunnel"), f"allowed.test:{port}", "allowed.test", ca_cert)
    else:
        c = H2Client.connect(("127.0.0.1", port), "allowed.test", ca_cert)
    with c:
        sid = c.request("GET", "/stream?n=4&every=2", f"allowed.test:{port}")
        res = c.wait(sid, timeout=30)
    assert res.status == 200 and res.ended and res.reset_code is None, str(res)
    assert res.body.count(b"chunk ") == 4, str(res)


# --- an origin dripping its response HEADERS ------------------------------------------------------

class DrippingOrigin:
    """TLS, ALPN h2: answers each request with a HEADERS frame written one byte every 0.5 s."""

    def __init__(self, upstream_pki):
        self.ctx = h2_server_context(upstream_pki.server.cert_path, upstream_pki.server.key_path)
        self.sock = socket.create_server(("127.0.0.2", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.requests = 0
        self.thread = start_accepting(self.sock, self.stop, self._serve, "dripping-origin", seconds=50)

    port = property(lambda self: self.sock.getsockname()[1])

    def _serve(self, raw):
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as tls:
                self._serve_h2(tls)
        except (OSError, ssl.SSLError):
            pass

    def _serve_h2(self, tls):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        tls.settimeout(DRIP_EVERY)
        deadline = time.monotonic() + 20
        pending = b""
        while not self.stop.is_set() and time.monotonic() < deadline:
            if pending:
                tls.sendall(pending[:1])
                pending = pending[1:]
            try:
                data = tls.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    self.requests += 1
                    tls.sendall(conn.data_to_send())  # SETTINGS ACK and the like, whole
                    conn.send_headers(ev.stream_id, [(":status", "200"), ("x-slow", "y" * 40)], end_stream=True)
                    pending += conn.data_to_send()
            if not pending:
                tls.sendall(conn.data_to_send())

    def close(self):
        self.stop.set()
        self.sock.close()


def test_origin_dripping_response_headers_gets_504(proxy_factory, upstream_pki, ca_cert):
    origin = DrippingOrigin(upstream_pki)
    try:
        p = proxy_factory.start(proxy_extra={"upstream_response_header_timeout": "1s"})
        start = time.monotonic()
        r = clients.curl(f"https://allowed.test:{origin.port}/drip", proxy=p.tunnel_url, cacert=ca_cert,
                         extra=["--http2"], max_time=15)
        took = time.monotonic() - start
    finally:
        origin.close()
    assert origin.requests == 1
    assert r.http_code == 504, r
    assert took <= 1 + SLACK, f"504 only after {took:.1f} s"
    [rec] = p.wait_audit(1, predicate=lambda r: r["audit"]["path"] == "/drip")
    assert rec["audit"]["status_code"] == 504 and rec["error"] == "timeout awaiting response headers", rec
