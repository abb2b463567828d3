"""HTTP and HTTPS upstream servers for tests (stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive).

Endpoints:
  /echo[...]          JSON of what arrived: method, path, query, headers ([name, value] pairs in
                      wire order and casing), body (text), tls, server name, connection number
  /bytes/N            N bytes (pattern of b"0123456789abcdef") streamed in 64 KiB chunks with
                      Content-Length; ?chunked=1 uses chunked transfer encoding instead
  /slow[?s=SECONDS]   sleeps (default 3 s, at most 10 s) before sending the response headers
  /status/N           responds with status N and a small text body
  /sink               reads and counts the request body without keeping it; JSON {"length": n}
  /close              responds, then closes the connection (Connection: close)
  /trailers           chunked "trailers follow\n" then trailer fields x-checksum and x-trailer-two
  /reflect            reflects the Authorization header (test_redaction.py): into response header
                      X-Reflected, the body ("authorization=<value>\n" and the /echo JSON), and with
                      ?reason=1 the reason phrase; ?gzip=1 gzips the body (Content-Encoding: gzip);
                      ?trailers=1 sends the body chunked with trailer X-Reflected-Trailer
  /drip               "token=<Authorization>\n" one byte per write with ?pause=S (default 0.01,
                      at most 0.2) between bytes; chunked, or Content-Length with ?cl=1
  /sprinkle/N         N bytes of filler with the Authorization value placed every ?every=K bytes
                      (default 65543, so copies straddle the 64 KiB writes); Content-Length
  /reflect-sse        ?n events (default 5, at most 50), one every ?every=S s (default 0.2): each
                      "id: i\ndata: <Authorization> t=<send time>\n\n"
  /ws-reflect         a bare WebSocket-style 101 whose head carries X-Reflected: <Authorization>,
                      then echoes raw bytes until the peer closes (at most 10 s)
  anything else       200 "hello from <name>\n"
The server counts accepted TCP connections (`connections`) and records every request (`requests`).
"""
import gzip
import json
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .serving import shutdown_all

PATTERN = b"0123456789abcdef" * 4096  # 64 KiB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "iron-test-upstream/1"
    sys_version = ""

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass

    # Every method goes through one dispatcher.
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _body_pieces(self):
        """Yield the request body in pieces (Content-Length or chunked), bounded loops."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            for _ in range(10_000_000):
                line = self.rfile.readline(1024)
                if not line:
                    return
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(100):  # trailers until the blank line
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return
                left = size
                while left > 0:
                    piece = self.rfile.read(min(left, 65536))
                    if not piece:
                        return
                    left -= len(piece)
                    yield piece
                self.rfile.readline(8)  # CRLF after the chunk
            return
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            piece = self.rfile.read(min(left, 65536))
            if not piece:
                return
            left -= len(piece)
            yield piece

    def _read_body(self) -> bytes:
        return b"".join(self._body_pieces())

    def _send(self, status, body: bytes, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", self.server.name)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/sink"):
            body_length = sum(len(p) for p in self._body_pieces())  # counted, not kept
            body = b""
        else:
            body = self._read_body()
            body_length = len(body)
        record = {
            "method": self.command,
            "path": url.path,
            "raw_target": self.path,
            "query": url.query,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "body_length": body_length,
            "tls": isinstance(self.connection, ssl.SSLSocket),
            "server": self.server.name,
            "connection": getattr(self.connection, "_iron_conn_no", 0),
        }
        with self.server.lock:
            self.server.requests.append(record)
        path = url.path
        qs = urllib.parse.parse_qs(url.query)
        if path.startswith("/echo"):
            self._send(200, json.dumps(record).encode(), "application/json")
        elif path.startswith("/bytes/"):
            self._bytes(int(path.split("/")[2]), qs.get("chunked", ["0"])[0] == "1")
        elif path.startswith("/slow"):
            delay = min(float(qs.get("s", ["3"])[0]), 10.0)
            time.sleep(delay)
            self._send(200, b"slow response\n")
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self._send(code, f"status {code}\n".encode())
        elif path.startswith("/sink"):
            self._send(200, json.dumps({"length": body_length}).encode(), "application/json")
        elif path.startswith("/sse"):
            self._sse(min(int(qs.get("n", ["5"])[0]), 50), min(float(qs.get("every", ["0.2"])[0]), 2.0))
        elif path == "/trailers":
            self._trailers()
        elif path == "/reflect":
            self._reflect(record, qs)
        elif path == "/drip":
            self._drip(min(float(qs.get("pause", ["0.01"])[0]), 0.2), qs.get("cl", ["0"])[0] == "1")
        elif path.startswith("/sprinkle/"):
            self._sprinkle(int(path.split("/")[2]), max(int(qs.get("every", ["65543"])[0]), 64))
        elif path == "/reflect-sse":
            self._sse(min(int(qs.get("n", ["5"])[0]), 50), min(float(qs.get("every", ["0.2"])[0]), 2.0),
                      prefix=f"{self._auth()} t=")
        elif path == "/ws-reflect":
            self._ws_reflect()
        elif path == "/close":
            self.close_connection = True
            self._send(200, b"closing\n", extra=[("Connection", "close")])
        else:
            self._send(200, f"hello from {self.server.name}\n".encode())

    def _sse(self, n, every, prefix=""):
        """n Server-Sent Events, one every `every` seconds, each carrying its send time (after
        `prefix`: /reflect-sse puts the Authorization header there)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(n):
            time.sleep(every)
            event = f"id: {i}\ndata: {prefix}{time.time():.6f}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _trailers(self):
        body = b"trailers follow\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "x-checksum, x-trailer-two")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        self.wfile.write(b"0\r\nx-checksum: sha256-abc123\r\nx-trailer-two: 2\r\n\r\n")
        self.wfile.flush()

    # --- reflecting endpoints (test_redaction.py) -------------------------------------------------
    def _auth(self) -> str:
        return self.headers.get("Authorization", "")

    def _reflect(self, record, qs):
        auth = self._auth()
        body = f"authorization={auth}\n".encode() + json.dumps(record).encode() + b"\n"
        extra = [("X-Reflected", auth)]
        if qs.get("gzip", ["0"])[0] == "1":
            body = gzip.compress(body)
            extra.append(("Content-Encoding", "gzip"))
        if qs.get("trailers", ["0"])[0] == "1":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Reflected-Trailer")
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
            self.wfile.write(f"0\r\nX-Reflected-Trailer: {auth}\r\n\r\n".encode())
            return
        if qs.get("reason", ["0"])[0] == "1":
            self.send_response(401, f"Bad credentials {auth}")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            return
        self._send(200, body, "text/plain", extra=extra)

    def _drip(self, pause, content_length):
        body = f"token={self._auth()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if content_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i in range(len(body)):
            piece = body[i:i + 1]
            self.wfile.write(piece if content_length else b"1\r\n" + piece + b"\r\n")
            self.wfile.flush()
            time.sleep(pause)
        if not content_length:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _sprinkle(self, n, every):
        secret = self._auth().encode() or b"-"
        block = PATTERN[:max(every - len(secret), 0)] + secret
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        stream = block * (65536 // len(block) + 2)
        offset, left = 0, n
        while left > 0:
            piece = stream[offset:offset + min(left, 65536)]
            self.wfile.write(piece)
            left -= len(piece)
            offset = (offset + len(piece)) % len(block)

    def _ws_reflect(self):
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("X-Reflected", self._auth())
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        deadline = time.monotonic() + 10
        self.connection.settimeout(1)
        while time.monotonic() < deadline:
            try:
                data = self.connection.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            self.connection.sendall(data)

    def _bytes(self, n, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("X-Upstream", self.server.name)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        left = n
        while left > 0:
            piece = PATTERN if left >= len(PATTERN) else PATTERN[:left]
            if chunked:
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                self.wfile.write(piece)
            left -= len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


class UpstreamServer(ThreadingHTTPServer):
    """An HTTP(S) server on (host, port). `tls` is an ssl.SSLContext (server side) or None."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host="127.0.0.2", port=0, tls: ssl.SSLContext | None = None, name="upstream"):
        self.name = name
        self.tls = tls
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self._open = set()
        self._thread = None
        super().__init__((host, port), _Handler)

    @property
    def host(self):
        return self.server_address[0]

    @property
    def port(self):
        return self.server_address[1]

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def start(self):
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name=f"upstream-{self.name}",
            daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        shutdown_all(self.lock, self._open)
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def reset_counters(self):
        with self.lock:
            self.connections = 0
            self.requests.clear()

    def requests_for(self, path_prefix):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    # Called in the per-connection thread: the TLS handshake happens here, not in the accept loop.
    def finish_request(self, request, client_address):
        with self.lock:
            self.connections += 1
            conn_no = self.connections
            self._open.add(request)
        sock = request
        try:
            request.settimeout(30)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                with self.lock:
                    self._open.discard(request)
                    self._open.add(sock)
            try:
                sock._iron_conn_no = conn_no
            except AttributeError:
                pass
            try:
                self.RequestHandlerClass(sock, client_address, self)
            except (OSError, ssl.SSLError, ValueError):
                pass  # the client (the proxy) went away mid-response: not the test's business
        finally:
            with self.lock:
                self._open.discard(sock)
                self._open.discard(request)
            if sock is not request:
                try:
                    sock.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        pass


def bind_paired(make, pair_with=None, port=0, tries=20):
    """make(port) → an unstarted server object with .port and .server_close(). With pair_with,
    retry until pair_with:<that port> is free too (the HTTPS listener must use the same port
    number as the upstream it reaches, see docs/testing.md)."""
    from .clients import port_is_free
    for _ in range(tries):
        srv = make(port)
        if pair_with is None or port != 0 or port_is_free(pair_with, srv.port):
            return srv
        srv.server_close()
    raise AssertionError("could not find a port free on both loopback addresses")


def server_tls_context(cert_path, key_path, alpn=("http/1.1",)) -> ssl.SSLContext:
    """A server context with the given ALPN protocols (this HTTP/1.1 server: "http/1.1" only, so
    a client offering h2 too gets HTTP/1.1; harness/h2_upstream.py passes "h2")."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path))
    ctx.set_alpn_protocols(list(alpn))
    return ctx
