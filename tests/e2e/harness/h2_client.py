"""A small HTTP/2 client on python3-h2 for what curl and nghttp can't do: several streams on one
connection under the test's control, trailers, resets, withheld flow control, and (raw=True)
requests that break RFC 9113 §8.2 on purpose (validation and normalisation of outbound headers
switched off).

    c = H2Client.connect(("127.0.0.1", port), "allowed.test", cafile)        # HTTPS listener
    c = H2Client.via_tunnel(tunnel_addr, "allowed.test:443", "allowed.test", cafile)
    sid = c.request("GET", "/echo", "allowed.test:443")
    res = c.wait(sid)          # StreamResult: status, headers, body, trailers, reset_code, ...

Every wait is bounded; a connection-level GOAWAY or EOF ends every open stream's wait.
"""
import select
import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from . import clients

PROTOCOL_ERROR = int(h2.errors.ErrorCodes.PROTOCOL_ERROR)
CANCEL = int(h2.errors.ErrorCodes.CANCEL)


def _s(b):
    return b.decode("latin-1") if isinstance(b, (bytes, bytearray)) else str(b)


@dataclass
class StreamResult:
    stream_id: int
    headers: list = field(default_factory=list)   # [(name, value)] of the final response head
    informational: list = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    chunks: list = field(default_factory=list)    # [(time.time() at arrival, bytes)]
    trailers: list = field(default_factory=list)
    ended: bool = False
    reset_code: int | None = None                 # RST_STREAM from the peer
    received: int = 0
    withhold: bool = False                        # don't open this stream's window (flow control tests)
    keep: bool = True                             # keep body and chunks (else only count bytes)

    @property
    def status(self) -> int:
        for k, v in self.headers:
            if k == ":status":
                return int(v)
        return 0

    def header(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def done(self):
        return self.ended or self.reset_code is not None

    def __str__(self):
        return (f"stream {self.stream_id}: status={self.status} ended={self.ended} "
                f"reset={self.reset_code} headers={self.headers} trailers={self.trailers} "
                f"body={bytes(self.body[:300])!r}")


class H2Client:
    def __init__(self, sock: ssl.SSLSocket, *, raw=False, window=None):
        if sock.selected_alpn_protocol() != "h2":
            sock.close()
            raise AssertionError(f"ALPN: server selected {sock.selected_alpn_protocol()!r}, not h2")
        self.sock = sock
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            validate_outbound_headers=not raw, normalize_outbound_headers=not raw,
            validate_inbound_headers=True)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        if window:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.h2.increment_flow_control_window(window)
        self.streams: dict[int, StreamResult] = {}
        self.terminated = None      # ConnectionTerminated event, if the server sent GOAWAY
        self.closed = False         # EOF / reset from the server
        self.settings_acked = False
        self._flush()

    # --- connecting ------------------------------------------------------------------------------
    @staticmethod
    def _tls(sock, server_hostname, cafile, timeout):
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.set_alpn_protocols(["h2"])
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return ctx.wrap_socket(sock, server_hostname=server_hostname)

    @classmethod
    def connect(cls, addr, server_hostname, cafile, *, timeout=10.0, **kw):
        raw = socket.create_connection(addr, timeout=timeout)
        return cls(cls._tls(raw, server_hostname, cafile, timeout), **kw)

    @classmethod
    def via_tunnel(cls, tunnel_addr, target, server_hostname, cafile, *, timeout=10.0, **kw):
        sock, status, head = clients.connect_tunnel(tunnel_addr, target, timeout=timeout)
        if status != 200:
            sock.close()
            raise AssertionError(f"CONNECT {target} answered {head!r}")
        return cls(cls._tls(sock, server_hostname, cafile, timeout), **kw)

    def close(self):
        try:
            self.h2.close_connection()
            self._flush()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- sending ---------------------------------------------------------------------------------
    def _flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def request(self, method, path, authority, headers=(), body=None, trailers=None,
                end_stream=True, scheme="https", withhold=False, keep=True, pseudo=None) -> int:
        """Send a request; returns its stream id. `headers` are (name, value) pairs sent as given
        (lowercase them unless the test wants otherwise). `pseudo` replaces the pseudo-headers."""
        sid = self.h2.get_next_available_stream_id()
        hs = list(pseudo) if pseudo is not None else [
            (":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
        hs += list(headers)
        self.streams[sid] = StreamResult(sid, withhold=withhold, keep=keep)
        last = body is None and trailers is None and end_stream
        self.h2.send_headers(sid, [(k.encode() if isinstance(k, str) else k,
                                    v.encode() if isinstance(v, str) else v) for k, v in hs],
                             end_stream=last)
        self._flush()
        if body is not None:
            self.send_body(sid, body, end_stream=trailers is None and end_stream)
        if trailers is not None:
            self.h2.send_headers(sid, [(k.encode(), v.encode()) for k, v in trailers], end_stream=True)
            self._flush()
        return sid

    def send_body(self, sid, data: bytes, end_stream=True, timeout=10.0):
        """Send `data` on stream sid, waiting (bounded) for window when needed."""
        view = memoryview(data)
        off = 0
        deadline = time.monotonic() + timeout
        while off < len(view):
            st = self.streams[sid]
            if st.done:
                return
            window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if window <= 0:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no flow-control window to send on stream {sid}")
                self.pump(0.1)
                continue
            n = min(window, len(view) - off)
            try:
                self.h2.send_data(sid, view[off:off + n].tobytes())
            except h2.exceptions.StreamClosedError:
                return  # the server reset the stream meanwhile
            off += n
            self._flush()
        if end_stream and not self.streams[sid].done:
            try:
                self.h2.end_stream(sid)
            except h2.exceptions.StreamClosedError:
                return  # the server reset the stream meanwhile
            self._flush()

    def reset(self, sid, code=CANCEL):
        self.h2.reset_stream(sid, code)
        self._flush()

    def open_window(self, sid, n):
        """Let the server send n more bytes on stream sid (a withheld stream)."""
        self.h2.increment_flow_control_window(n, stream_id=sid)
        self._flush()

    # --- receiving -------------------------------------------------------------------------------
    def pump(self, timeout) -> bool:
        """Read and process what arrives within `timeout`. Returns False once the connection is
        gone (EOF, reset or GOAWAY processed)."""
        if self.closed:
            return False
        if self.sock.pending() == 0:
            r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not r:
                return True
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        events = self.h2.receive_data(data)
        for ev in events:
            self._event(ev)
        try:
            self._flush()
        except (ConnectionError, OSError):
            self.closed = True
        return not self.closed and self.terminated is None

    def _event(self, ev):
        h = self.h2
        st = self.streams.get(getattr(ev, "stream_id", None) or -1)
        if st is None and isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived,
                                          h2.events.InformationalResponseReceived)):
            return  # not a stream we opened (e.g. a push): ignore
        if isinstance(ev, h2.events.ResponseReceived):
            st.headers = [(_s(k), _s(v)) for k, v in ev.headers]
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            st.informational.append([(_s(k), _s(v)) for k, v in ev.headers])
        elif isinstance(ev, h2.events.DataReceived):
            if st is not None:
                st.received += len(ev.data)
                if st.keep:
                    st.body += ev.data
                    st.chunks.append((time.time(), ev.data))
            if ev.flow_controlled_length:
                if st is not None and st.withhold:
                    # Open the connection window only: this stream's window stays shut.
                    h.increment_flow_control_window(ev.flow_controlled_length)
                else:
                    h.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers = [(_s(k), _s(v)) for k, v in ev.headers]
        elif isinstance(ev, h2.events.StreamEnded):
            if st is not None:
                st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st.reset_code = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acked = True

    def wait(self, sid, timeout=10.0) -> StreamResult:
        """Until stream sid ends or is reset, or the connection goes; bounded."""
        return self.wait_all([sid], timeout)[0]

    def wait_all(self, sids, timeout=10.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.streams[s].done for s in sids):
                break
            if not self.pump(min(0.2, max(0.0, deadline - time.monotonic()))):
                break
        return [self.streams[s] for s in sids]

    def wait_for(self, predicate, timeout=10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if not self.pump(min(0.1, max(0.0, deadline - time.monotonic()))):
                return predicate()
        return predicate()


# --- malformed requests (RFC 9113 §8.2): what the smuggling tests send with raw=True -------------

# A body that becomes a second request if a hop believed "transfer-encoding: chunked".
SMUGGLE_BODY = b"0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: allowed.test\r\n\r\n"

# One header field each; every one makes a request malformed (RFC 9113 §8.2.1 field validity, §8.2.2
# connection-specific fields, TE other than "trailers").
MALFORMED_HEADERS = {
    "connection": ("connection", "keep-alive"),
    "transfer-encoding": ("transfer-encoding", "chunked"),
    "keep-alive": ("keep-alive", "timeout=5"),
    "proxy-connection": ("proxy-connection", "keep-alive"),
    "upgrade": ("upgrade", "h2c"),
    "te-not-trailers": ("te", "gzip"),
    "crlf-in-value": ("x-smuggle", "a\r\ntransfer-encoding: chunked"),
    "uppercase-name": ("X-Upper", "1"),
}


def assert_rejected(c: H2Client, res: StreamResult):
    """RST_STREAM(PROTOCOL_ERROR) before any response, or a 400 response; a stream error, so the
    connection itself stays up (RFC 9113 §8.1.1)."""
    assert c.terminated is None and not c.closed, (
        f"the whole connection was ended ({c.terminated}) instead of the malformed stream")
    if res.status == 0:
        assert res.reset_code == PROTOCOL_ERROR, f"expected RST_STREAM(PROTOCOL_ERROR) or 400: {res}"
    else:
        assert res.status == 400, f"a malformed request was answered {res.status}: {res}"
