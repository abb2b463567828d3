"""An HTTP/2 upstream for tests: h2 over TLS, ALPN "h2" only, built on python3-h2 (4.x).

One thread per TCP connection; streams of a connection are served concurrently by a small loop
(read frames, advance every stream's response as far as flow control allows, write). Endpoints:
  /echo...            JSON of what arrived: method, path, raw_target (:path), query, authority,
                      scheme, pseudo ([name, value] pairs), headers ([name, value] pairs in wire
                      order, pseudo-headers excluded), trailers, body (text), body_length, tls,
                      alpn, server name, connection number, stream id
  /bytes/N            N bytes (pattern of b"0123456789abcdef") with content-length
  /sink               counts the request body without keeping it; JSON {"length": n}
  /trailers           a small body, then trailers x-checksum / x-trailer-two (HEADERS + END_STREAM);
                      ?grpc=1 sends grpc-status: 5 / grpc-message: not%20found instead
  /stream?n=N&every=S N chunks, one every S seconds (defaults 5 and 0.2, at most 600 and 2 s),
                      each "chunk <i> t=<time.time() when sent>\n"
  /slow?s=SECONDS     sleeps (default 3, at most 10 s) before the response headers
  /status/N           status N, small text body (204 and 304: none, END_STREAM on the headers)
  /empty              200 with no content-length and END_STREAM on the headers (an empty body)
  /die                headers with content-length 100000 and one chunk, then the TCP connection
                      closes (an origin dying mid-body)
  /reset              response headers and one chunk, then RST_STREAM(INTERNAL_ERROR)
  /reflect            reflects the authorization header (test_redaction.py): response header
                      x-reflected, a body "authorization=<value>\n" + the /echo JSON sent in 3-byte
                      DATA frames (so the value is split across them) with content-length, and a
                      trailer x-reflected-trailer; ?gzip=1 gzips the body (content-encoding: gzip)
  anything else       200 "hello from <name>\n"
Records, all under `lock`: `connections` (TLS connections accepted), `non_h2` (connections whose
ALPN was not h2: they are closed), `heads` (every request head seen, complete or not: path and
headers), `requests` (completed requests, as the /echo JSON), `resets` (streams the peer reset:
path and error code), `protocol_errors` (h2 ProtocolErrors raised by what the peer sent), and
`progress` (one dict per stream: path, bytes received and sent so far, updated live).
"""
import gzip
import json
import select
import socket
import ssl
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from .serving import listen, shutdown_all, start_accepting
from .upstream import PATTERN, server_tls_context

MAX_CONN_SECONDS = 600      # a connection's whole life, bounded
IDLE_SECONDS = 60           # no frame for this long: the connection is closed
SEND_BUDGET = 512 * 1024    # bytes produced per loop turn before reading again
KEEP_BODY_MAX = 16 << 20    # request bodies above this are counted, not kept (echo shows a prefix)
STREAM_WINDOW = 4 << 20     # what we let the peer send per stream before our WINDOW_UPDATE
CONN_WINDOW = 16 << 20


def h2_server_context(cert_path, key_path) -> ssl.SSLContext:
    return server_tls_context(cert_path, key_path, alpn=("h2",))


def _s(b) -> str:
    return b.decode("latin-1") if isinstance(b, (bytes, bytearray)) else str(b)


class _Stream:
    def __init__(self, sid, headers):
        self.sid = sid
        self.headers = [(_s(k), _s(v)) for k, v in headers]
        self.pseudo = {k: v for k, v in self.headers if k.startswith(":")}
        self.path = self.pseudo.get(":path", "")
        self.body = bytearray()
        self.received = 0
        self.trailers = []
        self.gen = None     # response generator, once the request is complete
        self.item = None    # the generator's current item
        self.offset = 0     # bytes of the current data item already sent
        self.info = None    # this stream's entry in server.progress


class _Conn:
    def __init__(self, server, sock, conn_no):
        self.server = server
        self.sock = sock
        self.conn_no = conn_no
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                        validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.streams: dict[int, _Stream] = {}
        self.closing = False  # a /die response asked for the connection to close

    # --- loop ------------------------------------------------------------------------------------
    def run(self):
        h = self.h2
        h.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams,
        })
        h.initiate_connection()
        h.increment_flow_control_window(CONN_WINDOW - 65535)
        self._flush()
        start = last_activity = time.monotonic()
        while not self.server.stopping.is_set():
            now = time.monotonic()
            if now - start > MAX_CONN_SECONDS or now - last_activity > IDLE_SECONDS:
                return
            busy, wake = self._produce()
            self._flush()
            if self.closing:
                return
            if busy:
                timeout = 0
            elif wake is not None:
                timeout = max(0.0, min(wake - time.monotonic(), 0.2))
            else:
                timeout = 0.2
            if not hasattr(self.sock, "pending") or self.sock.pending() == 0:
                r, _, _ = select.select([self.sock], [], [], timeout)
                if not r:
                    continue
            try:
                data = self.sock.recv(1 << 20)
            except (ssl.SSLWantReadError, socket.timeout):
                continue
            if not data:
                return
            last_activity = time.monotonic()
            try:
                events = h.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                with self.server.lock:
                    self.server.protocol_errors.append({"error": repr(e), "connection": self.conn_no,
                                                        "paths": [s.path for s in self.streams.values()]})
                self._flush()
                return
            for ev in events:
                if self._event(ev) is False:
                    self._flush()
                    return
            self._flush()

    def _flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    # --- events ----------------------------------------------------------------------------------
    def _event(self, ev):
        h, srv = self.h2, self.server
        if isinstance(ev, h2.events.RequestReceived):
            st = _Stream(ev.stream_id, ev.headers)
            self.streams[ev.stream_id] = st
            st.info = {"path": st.path, "connection": self.conn_no, "stream": ev.stream_id,
                       "received": 0, "sent": 0, "done": False}
            with srv.lock:
                srv.heads.append({"path": st.path, "headers": [list(x) for x in st.headers],
                                  "connection": self.conn_no, "stream": ev.stream_id})
                srv.progress.append(st.info)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.received += len(ev.data)
                st.info["received"] = st.received
                if not st.path.startswith("/sink") and len(st.body) < KEEP_BODY_MAX:
                    st.body += ev.data[:KEEP_BODY_MAX - len(st.body)]
            if ev.flow_controlled_length:
                h.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.trailers = [(_s(k), _s(v)) for k, v in ev.headers]
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                self._complete(st)
        elif isinstance(ev, h2.events.StreamReset):
            st = self.streams.pop(ev.stream_id, None)
            with srv.lock:
                srv.resets.append({"path": st.path if st else None, "error_code": int(ev.error_code),
                                   "connection": self.conn_no, "stream": ev.stream_id,
                                   "remote": ev.remote_reset})
        elif isinstance(ev, h2.events.ConnectionTerminated):
            return False
        return True

    def _complete(self, st: _Stream):
        url = urllib.parse.urlsplit(st.path)
        record = {
            "method": st.pseudo.get(":method", ""),
            "path": url.path,
            "raw_target": st.path,
            "query": url.query,
            "authority": st.pseudo.get(":authority", ""),
            "scheme": st.pseudo.get(":scheme", ""),
            "pseudo": [[k, v] for k, v in st.headers if k.startswith(":")],
            "headers": [[k, v] for k, v in st.headers if not k.startswith(":")],
            "trailers": [list(t) for t in st.trailers],
            "body": bytes(st.body).decode("utf-8", "replace"),
            "body_length": st.received,
            "tls": not self.server.cleartext,
            "alpn": "h2c" if self.server.cleartext else "h2",
            "server": self.server.name,
            "connection": self.conn_no,
            "stream": st.sid,
        }
        with self.server.lock:
            self.server.requests.append(record)
        st.gen = self._respond(st, url, record)

    # --- responses (generators of ("headers", list, end) / ("data", bytes) / ("sleep", t) /
    #     ("trailers", list) / ("end",) / ("reset", code)) -----------------------------------------
    def _respond(self, st, url, record):
        path = url.path
        qs = urllib.parse.parse_qs(url.query)

        def head(status, ctype="text/plain", length=None, extra=()):
            hs = [(":status", str(status)), ("content-type", ctype), ("x-upstream", self.server.name)]
            if length is not None:
                hs.append(("content-length", str(length)))
            return ("headers", hs + list(extra), False)

        if path.startswith("/echo"):
            body = json.dumps(record).encode()
            yield head(200, "application/json", len(body))
            yield ("data", body)
            yield ("end",)
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            yield head(200, "application/octet-stream", n)
            left = n
            while left > 0:
                piece = PATTERN if left >= len(PATTERN) else PATTERN[:left]
                yield ("data", piece)
                left -= len(piece)
            yield ("end",)
        elif path.startswith("/sink"):
            body = json.dumps({"length": st.received}).encode()
            yield head(200, "application/json", len(body))
            yield ("data", body)
            yield ("end",)
        elif path.startswith("/trailers"):
            yield head(200)
            yield ("data", b"trailers follow\n")
            if qs.get("grpc", ["0"])[0] == "1":
                yield ("trailers", [("grpc-status", "5"), ("grpc-message", "not%20found")])
            else:
                yield ("trailers", [("x-checksum", "sha256-abc123"), ("x-trailer-two", "2")])
        elif path.startswith("/stream"):
            n = min(int(qs.get("n", ["5"])[0]), 600)
            every = min(float(qs.get("every", ["0.2"])[0]), 2.0)
            yield head(200, "text/plain")
            t = time.monotonic()
            for i in range(n):
                t += every
                yield ("sleep", t)
                yield ("data", f"chunk {i} t={time.time():.6f}\n".encode())
            yield ("end",)
        elif path.startswith("/slow"):
            delay = min(float(qs.get("s", ["3"])[0]), 10.0)
            yield ("sleep", time.monotonic() + delay)
            yield head(200, length=len(b"slow response\n"))
            yield ("data", b"slow response\n")
            yield ("end",)
        elif path.startswith("/status/") and path.split("/")[2] in ("204", "304"):
            yield ("headers", [(":status", path.split("/")[2]), ("x-upstream", self.server.name)], True)
        elif path.startswith("/empty"):
            yield ("headers", [(":status", "200"), ("x-upstream", self.server.name)], True)
        elif path.startswith("/die"):
            yield head(200, "application/octet-stream", 100000)
            yield ("data", b"x" * 1000)
            yield ("close",)
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            body = f"status {code}\n".encode()
            yield head(code, length=len(body))
            yield ("data", body)
            yield ("end",)
        elif path.startswith("/reflect"):
            auth = dict((k.lower(), v) for k, v in st.headers).get("authorization", "")
            body = f"authorization={auth}\n".encode() + json.dumps(record).encode() + b"\n"
            extra = [("x-reflected", auth)]
            if qs.get("gzip", ["0"])[0] == "1":
                body = gzip.compress(body)
                extra.append(("content-encoding", "gzip"))
            yield head(200, "text/plain", len(body), extra)
            for i in range(0, len(body), 3):
                yield ("data", body[i:i + 3])
            yield ("trailers", [("x-reflected-trailer", auth)])
        elif path.startswith("/reset"):
            yield head(200)
            yield ("data", b"about to reset\n")
            yield ("reset", 2)  # INTERNAL_ERROR
        else:
            body = f"hello from {self.server.name}\n".encode()
            yield head(200, length=len(body))
            yield ("data", body)
            yield ("end",)

    def _produce(self):
        """Advance every stream's response as far as time and flow control allow. Returns
        (busy: more can be sent right now, wake: monotonic time a sleeping stream wants to run)."""
        h = self.h2
        budget = SEND_BUDGET
        busy, wake = False, None
        now = time.monotonic()
        for st in list(self.streams.values()):
            if st.gen is None:
                continue
            for _ in range(100_000):
                if st.item is None:
                    try:
                        st.item = next(st.gen)
                        st.offset = 0
                    except StopIteration:
                        st.gen = None
                        self.streams.pop(st.sid, None)
                        break
                kind = st.item[0]
                try:
                    if kind == "sleep":
                        if now < st.item[1]:
                            wake = st.item[1] if wake is None else min(wake, st.item[1])
                            break
                        st.item = None
                    elif kind == "headers":
                        h.send_headers(st.sid, st.item[1], end_stream=st.item[2])
                        st.item = None
                    elif kind == "data":
                        data = st.item[1]
                        if budget <= 0:
                            busy = True
                            break
                        window = min(h.local_flow_control_window(st.sid), h.max_outbound_frame_size)
                        if window <= 0:
                            break  # blocked until a WINDOW_UPDATE arrives
                        n = min(len(data) - st.offset, window, budget)
                        h.send_data(st.sid, data[st.offset:st.offset + n])
                        st.offset += n
                        budget -= n
                        st.info["sent"] += n
                        if st.offset >= len(data):
                            st.item = None
                    elif kind == "trailers":
                        h.send_headers(st.sid, st.item[1], end_stream=True)
                        st.item = None
                    elif kind == "end":
                        h.end_stream(st.sid)
                        st.item = None
                    elif kind == "close":
                        self.closing = True
                        st.gen = None
                        break
                    elif kind == "reset":
                        h.reset_stream(st.sid, st.item[1])
                        st.item = None
                        st.gen = None
                        self.streams.pop(st.sid, None)
                        break
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                    st.gen = None
                    self.streams.pop(st.sid, None)
                    break
            if st.gen is None and st.info is not None:
                st.info["done"] = True
        return busy, wake


class H2UpstreamServer:
    """h2 (TLS, ALPN h2) server on (host, port); `tls` is a server ssl.SSLContext offering h2.
    With `cleartext=True` (and no `tls`) it speaks h2c with prior knowledge instead."""

    def __init__(self, host="127.0.0.2", port=0, tls: ssl.SSLContext | None = None,
                 name="h2-upstream", cleartext=False, max_streams=1000):
        assert (tls is not None) != cleartext, "TLS with ALPN h2, or cleartext h2c: one of the two"
        self.cleartext = cleartext
        self.name = name
        self.tls = tls
        self.max_streams = max_streams  # SETTINGS_MAX_CONCURRENT_STREAMS this server announces
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = 0
        self.non_h2 = 0
        self.heads, self.requests, self.resets, self.protocol_errors, self.progress = [], [], [], [], []
        self._open = set()
        self._threads = []
        self.sock = listen(host, port)
        self._accept_thread = None

    host = property(lambda self: self.sock.getsockname()[0])
    port = property(lambda self: self.sock.getsockname()[1])
    scheme = property(lambda self: "http" if self.cleartext else "https")

    def server_close(self):
        self.sock.close()

    def start(self):
        self._accept_thread = start_accepting(self.sock, self.stopping, self._serve, f"h2-upstream-{self.name}",
                                              threads=self._threads)
        return self

    def _serve(self, raw):
        with self.lock:
            self.connections += 1
            conn_no = self.connections
            self._open.add(raw)
        sock = raw
        try:
            raw.settimeout(30)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self.cleartext:
                try:
                    sock = self.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            with self.lock:
                self._open.add(sock)
            if not self.cleartext and sock.selected_alpn_protocol() != "h2":
                with self.lock:
                    self.non_h2 += 1
                return
            try:
                _Conn(self, sock, conn_no).run()
            except (OSError, ssl.SSLError, ValueError):
                pass  # the peer went away
        finally:
            with self.lock:
                self._open.discard(sock)
                self._open.discard(raw)
            try:
                sock.close()
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        shutdown_all(self.lock, self._open)
        self.sock.close()
        if self._accept_thread:
            self._accept_thread.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)

    def reset_counters(self):
        with self.lock:
            self.connections = self.non_h2 = 0
            for lst in (self.heads, self.requests, self.resets, self.protocol_errors, self.progress):
                lst.clear()

    def requests_for(self, path_prefix):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    def heads_for(self, path_prefix):
        with self.lock:
            return [r for r in self.heads if r["path"].startswith(path_prefix)]

    def progress_for(self, path_prefix):
        with self.lock:
            return [dict(p) for p in self.progress if p["path"].startswith(path_prefix)]
