"""Clients: curl (the real thing), and small socket/ssl/http.client helpers for what curl can't do
(domain fronting, keep-alive counting, raw bytes)."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .paths import clean_env

CURL_MAX_TIME = 30


@dataclass
class CurlResult:
    exit_code: int
    http_code: int
    http_connect: int
    size_download: int
    body: bytes
    stderr: str
    info: dict = field(default_factory=dict)
    write_out: str = ""  # curl's raw -w output (one JSON object per transfer)

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __str__(self):
        return (f"curl exit={self.exit_code} http_code={self.http_code} "
                f"http_connect={self.http_connect} size={self.size_download} "
                f"stderr={self.stderr.strip()[-500:]!r} body={self.body[:300]!r}")

    __repr__ = __str__


def curl(url, *, proxy=None, resolve=None, cacert=None, headers=(), method=None, data=None,
         output=None, extra=(), max_time=CURL_MAX_TIME, timeout=None) -> CurlResult:
    """Run curl once. `resolve` is "host:port:addr". Body goes to `output` (a path or
    "/dev/null") or is captured. Never reads ~/.curlrc (-q) and never uses proxy env vars."""
    body_file = None
    args = ["curl", "-q", "-sS", "--max-time", str(max_time), "--connect-timeout", "10",
            "-w", "%{json}"]
    if output is None:
        fd, body_file = tempfile.mkstemp(prefix="curl-body-")
        os.close(fd)
        args += ["-o", body_file]
    else:
        args += ["-o", str(output)]
    if proxy:
        args += ["-x", proxy]
    else:
        args += ["--noproxy", "*"]
    if resolve:
        args += ["--resolve", resolve]
    if cacert:
        args += ["--cacert", str(cacert)]
    for h in headers:
        args += ["-H", h]
    if method:
        args += ["-X", method]
    if data is not None:
        args += ["--data-binary", data]
    args += list(extra)
    args.append(url)
    try:
        cp = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=timeout or max_time + 15, env=clean_env())
    finally:
        body = b""
        if body_file:
            body = Path(body_file).read_bytes()
            Path(body_file).unlink()
    try:
        info = json.loads(cp.stdout.decode("utf-8", "replace") or "{}")
    except ValueError:
        info = {}
    return CurlResult(
        exit_code=cp.returncode,
        http_code=int(info.get("http_code") or info.get("response_code") or 0),
        http_connect=int(info.get("http_connect") or 0),
        size_download=int(info.get("size_download") or 0),
        body=body,
        stderr=cp.stderr.decode("utf-8", "replace"),
        info=info,
        write_out=cp.stdout.decode("utf-8", "replace"),
    )


def transfers_info(result: CurlResult) -> list:
    """The -w %{json} objects of every transfer of a curl run with several URLs."""
    dec, text, out, pos = json.JSONDecoder(), result.write_out, [], 0
    for _ in range(10_000):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)
    return out


def client_context(cafile) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def read_head(sock, limit=65536, timeout=10.0) -> bytes:
    """Read until the end of an HTTP response head (CRLFCRLF) or EOF; bounded."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf and len(buf) < limit and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def status_of(head: bytes) -> int:
    try:
        return int(head.split(b"\r\n", 1)[0].split(b" ")[1])
    except (IndexError, ValueError):
        return 0


def connect_tunnel(proxy_addr, target, *, headers=(), timeout=10.0):
    """Open a TCP connection to the tunnel listener and send CONNECT target HTTP/1.1.
    Returns (socket, status, head bytes). The socket is left open either way."""
    sock = socket.create_connection(proxy_addr, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    for h in headers:
        req += h + "\r\n"
    req += "\r\n"
    sock.sendall(req.encode())
    head = read_head(sock, timeout=timeout)
    return sock, status_of(head), head


def tls_wrap(sock, server_hostname, cafile, timeout=10.0) -> ssl.SSLSocket:
    sock.settimeout(timeout)
    return client_context(cafile).wrap_socket(sock, server_hostname=server_hostname)


class SocketHTTPConnection(http.client.HTTPConnection):
    """http.client over an already-connected (possibly TLS) socket: keeps one connection for many
    requests, so tests can count upstream connections."""

    def __init__(self, sock, host_header, timeout=10.0):
        super().__init__("placeholder.invalid", timeout=timeout)
        self._given_sock = sock
        self._host_header = host_header

    def connect(self):
        if self._given_sock is None:
            raise ConnectionError("connection already used and closed")
        self.sock = self._given_sock
        self._given_sock = None

    def request(self, method, url, body=None, headers=None, **kw):
        headers = dict(headers or {})
        headers.setdefault("Host", self._host_header)
        super().request(method, url, body=body, headers=headers, **kw)


def get_once(conn, path):
    """One GET of `path` on an http.client connection, closed after: (response, whole body)."""
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def https_via_listener(listener_addr, sni, cafile, host_header=None, timeout=10.0):
    """A TLS connection to the proxy's HTTPS listener presenting `sni`; returns an http.client
    connection that sends `host_header` (default: sni:port)."""
    raw = socket.create_connection(listener_addr, timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = tls_wrap(raw, sni, cafile, timeout)
    return SocketHTTPConnection(tls, host_header or f"{sni}:{listener_addr[1]}", timeout)


def https_via_tunnel(tunnel_addr, target_host, target_port, cafile, sni=None, host_header=None,
                     timeout=10.0):
    """CONNECT target_host:target_port, then TLS (SNI = sni or target_host); returns an
    http.client connection. Raises AssertionError if the CONNECT is not answered with 200."""
    sock, status, head = connect_tunnel(tunnel_addr, f"{target_host}:{target_port}", timeout=timeout)
    if status != 200:
        sock.close()
        raise AssertionError(f"CONNECT {target_host}:{target_port} answered {head!r}")
    tls = tls_wrap(sock, sni or target_host, cafile, timeout)
    return SocketHTTPConnection(tls, host_header or f"{target_host}:{target_port}", timeout)


def wait_closed(sock, timeout) -> float | None:
    """Wait until the peer closes `sock` (recv returns b"" or a reset). Returns the seconds it
    took, or None if still open after `timeout`. Data received meanwhile is discarded."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return time.monotonic() - start
        if not data:
            return time.monotonic() - start
    return None


def port_is_free(host, port) -> bool:
    """Can a server bind host:port right now? (SO_REUSEADDR, as servers set it.)"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@dataclass
class NghttpResult:
    exit_code: int
    stdout: str
    stderr: str
    rows: list  # [(stream id, status code, body size as printed, path)] from the -s statistics
    seconds: float

    def __str__(self):
        return (f"nghttp exit={self.exit_code} rows={self.rows} seconds={self.seconds:.2f}\n"
                f"stdout tail: {self.stdout[-1500:]}\nstderr tail: {self.stderr[-1500:]}")

    __repr__ = __str__


def nghttp(uris, *, authority=None, cafile=None, extra=(), timeout=30) -> NghttpResult:
    """Run nghttp (nghttp2-client) with -n -s over the given https URIs (one connection; each URI
    a stream). nghttp has no --resolve: connect to an address in the URI and give `authority`,
    which nghttp also sends as SNI. It verifies the server with OpenSSL's default store, so
    `cafile` is passed as SSL_CERT_FILE (nghttp only warns on a verification failure: check
    `verified`)."""
    args = ["nghttp", "-n", "-s", "-t", str(timeout), *extra]
    if authority:
        args += ["-H", f":authority: {authority}"]
    args += list(uris)
    env = clean_env({"SSL_CERT_FILE": str(cafile)} if cafile else None)
    start = time.monotonic()
    cp = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                        timeout=timeout + 15, env=env)
    took = time.monotonic() - start
    rows = []
    in_table = False
    for line in cp.stdout.splitlines():
        if line.startswith("id ") and "code" in line:
            in_table = True
            continue
        parts = line.split()
        if in_table and len(parts) >= 7 and parts[0].isdigit() and parts[4].isdigit():
            rows.append((int(parts[0]), int(parts[4]), parts[5], parts[6]))
    return NghttpResult(cp.returncode, cp.stdout, cp.stderr, rows, took)


def nghttp_verified(res: NghttpResult) -> bool:
    return "Certificate verification failed" not in res.stdout + res.stderr
