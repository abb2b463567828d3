"""A scripted HTTP/1.1 upstream on raw sockets (optionally TLS), for transfers the stdlib server
cannot produce: bodies paced to a byte rate, and bodies cut short on purpose.

Endpoints (GET unless said otherwise; keep-alive after every complete response):
  /paced/N?rate=R[&chunked=1][&delay=S]
                               N bytes with Content-Length (or chunked), R bytes/s (64 KiB pieces),
                               the head sent after S seconds (default 0)
  /cut/N?of=M                  Content-Length M, then only N bytes and the connection closes
  /cut/N?chunked=1             chunked, N bytes in chunks, then a close with no last chunk
  /sink-cut/N  (POST)          reads N bytes of the request body, then closes without answering
  /sink        (POST)          reads the Content-Length body; 200 {"length": n}
  /ws                          101 Switching Protocols (no checks), then echoes bytes until EOF
  anything else                200 "raw upstream\\n"
`sent` maps each path to the body bytes written so far; `heads` keeps every request head as it
arrived (the raw text, any field name accepted: a lenient origin).
"""
import json
import socket
import ssl
import threading
import time
import urllib.parse

from .serving import listen, shutdown_all, start_accepting

PIECE = b"0123456789abcdef" * 4096  # 64 KiB


class RawUpstream:
    def __init__(self, host="127.0.0.2", port=0, tls: ssl.SSLContext | None = None):
        self.tls = tls
        self.lock = threading.Lock()
        self.sent: dict[str, int] = {}
        self.requests: list[str] = []
        self.heads: list[str] = []
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._sock = listen(host, port, backlog=64)
        self._thread = None

    @property
    def port(self):
        return self._sock.getsockname()[1]

    def server_close(self):
        self._sock.close()

    def start(self):
        self._thread = start_accepting(self._sock, self._stop, self._serve, "raw-upstream")
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._sock.close()
        shutdown_all(self.lock, self._open)

    def sent_for(self, path):
        with self.lock:
            return self.sent.get(path, 0)

    # --- serving ----------------------------------------------------------------------------------
    def _serve(self, conn):
        conn.settimeout(30)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with self.lock:
                self._open.add(conn)
            buf = b""
            for _ in range(1000):  # requests per connection, bounded
                head, buf = self._read_head(conn, buf)
                if head is None or not self._answer(conn, head, buf):
                    return
                buf = b""
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with self.lock:
                self._open.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _read_head(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536 or self._stop.is_set():
                return None, b""
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head.decode("latin-1"), rest

    def _answer(self, conn, head, body_start) -> bool:
        """Serves one request; False when the connection must close."""
        line, *fields = head.split("\r\n")
        method, target = line.split(" ")[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
        url = urllib.parse.urlsplit(target)
        qs = urllib.parse.parse_qs(url.query)
        parts = url.path.split("/")
        with self.lock:
            self.requests.append(url.path)
            self.heads.append(head)
        if url.path.startswith("/paced/"):
            time.sleep(min(float(qs.get("delay", ["0"])[0]), 10.0))
            return self._paced(conn, url.path, int(parts[2]), float(qs.get("rate", ["1048576"])[0]),
                               qs.get("chunked") == ["1"])
        if url.path.startswith("/cut/"):
            n = int(parts[2])
            if qs.get("chunked") == ["1"]:
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                self._body(conn, url.path, n, chunked=True)
            else:
                of = int(qs.get("of", [str(2 * n)])[0])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % of)
                self._body(conn, url.path, n, chunked=False)
            time.sleep(0.2)  # let the proxy relay what it got before the close
            return False
        if url.path == "/ws":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            if body_start:
                conn.sendall(body_start)
            for _ in range(100_000):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                conn.sendall(chunk)
            return False
        if url.path.startswith("/sink"):
            want = int(parts[2]) if url.path.startswith("/sink-cut/") else int(headers.get("content-length", "0"))
            got = self._drain_body(conn, body_start, want)
            if url.path.startswith("/sink-cut/"):
                return False
            body = json.dumps({"length": got}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            return True
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nraw upstream\n")
        return True

    def _paced(self, conn, path, n, rate, chunked) -> bool:
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % n
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n%s\r\n\r\n" % framing)
        t0 = time.monotonic()
        done = 0
        while done < n and not self._stop.is_set():
            piece = PIECE[:min(len(PIECE), n - done)]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            done += len(piece)
            with self.lock:
                self.sent[path] = done
            ahead = t0 + done / rate - time.monotonic()
            if ahead > 0:
                time.sleep(min(ahead, 1.0))
        if chunked and done == n:
            conn.sendall(b"0\r\n\r\n")
        return done == n

    def _body(self, conn, path, n, chunked):
        done = 0
        while done < n:
            piece = PIECE[:min(len(PIECE), n - done)]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            done += len(piece)
        with self.lock:
            self.sent[path] = done

    def _drain_body(self, conn, start, want) -> int:
        got = len(start)
        while got < want:
            chunk = conn.recv(min(65536, want - got))
            if not chunk:
                break
            got += len(chunk)
        return min(got, want)
