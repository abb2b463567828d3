"""Request smuggling and fronting through the HTTP/1.1 request head (RFC 9112 §3.2, §6), sent as
raw bytes on every way a request reaches the proxy: the plain listener, plain HTTP inside CONNECT
and SOCKS5 tunnels, the HTTPS (MITM) listener and TLS inside CONNECT.

1. An absolute-form target's authority replaces Host: policy, transforms (a secret bound to
   allowed.test), the audit record and the origin all see the one host.
2. More than one Host line is a 400.
3. Transfer-Encoding / Content-Length: the verdict never depends on header order; anything but
   a lone "chunked" (or a lone plain Content-Length) is refused, never forwarded.
4. A field name that spells a framing, routing or credential field with '_' (Content_Length,
   Transfer_Encoding, Host_, Proxy_Authorization): CGI, WSGI, Rack and PHP origins read '_' as
   '-', so the proxy refuses it (400) instead of forwarding a field it did not judge.
Every refusal is one audit record (reject, status, an error naming why); the lenient upstream
(harness/upstream.py) records what would have reached it.
"""
import json
import socket
import ssl
import struct
import threading
import time

import pytest

from harness import audit, clients
from harness.configs import allowlist_transform, secret_header_transform
from harness.h2_client import PROTOCOL_ERROR, H2Client
from harness.serving import start_accepting

pytestmark = pytest.mark.timeout(60)

PH = "IRONSH_PROXY_framing-token"
REAL = "real-framing-secret-7c1d"
PLAIN_CHANNELS = ["plain", "tunnel", "socks5"]
TLS_CHANNELS = ["mitm", "tunnel-tls"]
ALL_CHANNELS = PLAIN_CHANNELS + TLS_CHANNELS


# --- channels: one raw byte stream to the proxy, however the request arrives ------------------------

class Channel:
    """How raw request bytes reach the proxy, and which upstream the proxy then dials."""

    def __init__(self, kind, proxy, http_up, https_up, cafile):
        self.kind, self.proxy, self.cafile = kind, proxy, cafile
        self.upstream = https_up if kind in TLS_CHANNELS else http_up
        self.port = self.upstream.port
        self.scheme = "https" if kind in TLS_CHANNELS else "http"
        self.authority = f"allowed.test:{self.port}"

    def open(self, sni="allowed.test"):
        if self.kind == "plain":
            return socket.create_connection(("127.0.0.1", self.proxy.http_port), timeout=10)
        if self.kind == "mitm":
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            return clients.tls_wrap(raw, sni, self.cafile)
        if self.kind == "socks5":
            return socks5_open(self.proxy.tunnel_port, "allowed.test", self.port)
        sock, status, head = clients.connect_tunnel(self.proxy.addr("tunnel"), self.authority)
        assert status == 200, head
        return clients.tls_wrap(sock, sni, self.cafile) if self.kind == "tunnel-tls" else sock

    def exchange(self, data: bytes, sni="allowed.test", timeout=5.0) -> bytes:
        """Send `data`, return everything the proxy sends until it closes (bounded)."""
        sock = self.open(sni)
        try:
            sock.sendall(data)
            return read_until_closed(sock, timeout)
        finally:
            sock.close()

    def inner_records(self, n=1):
        """The audit records of requests (not of the CONNECT / SOCKS5 handshake)."""
        extra = 0 if self.kind in ("plain", "mitm") else 1
        recs = self.proxy.wait_audit(n + extra)
        return audit.inner_records(recs)


def socks5_open(port, host, target_port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    name = host.encode()
    s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", target_port))
    reply = b""
    deadline = time.monotonic() + 10
    while len(reply) < 12 and time.monotonic() < deadline:
        chunk = s.recv(12 - len(reply))
        if not chunk:
            break
        reply += chunk
    assert reply[:2] == b"\x05\x00" and reply[2:4] == b"\x05\x00", reply
    return s


def read_until_closed(sock, timeout) -> bytes:
    sock.settimeout(0.5)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(data) < 1 << 20:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def parse_response(data: bytes):
    """(status, [(name, value)], body) of the first response in `data`."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return clients.status_of(head), fields, body


def header_values(fields, name):
    return [v for k, v in fields if k.lower() == name.lower()]


@pytest.fixture
def make_channel(proxy_factory, http_upstream, https_upstream, ca_cert):
    """make_channel(kind, **proxy_config) → Channel to a fresh proxy (HTTPS listener paired with
    https_upstream's port, as docs/testing.md explains)."""
    def make(kind, **kw):
        p = proxy_factory.start(https_listen=f"127.0.0.1:{https_upstream.port}", **kw)
        return Channel(kind, p, http_upstream, https_upstream, ca_cert)
    return make


def assert_refused(ch, data, status, reason, *, path_prefix="/echo", sni="allowed.test"):
    """The proxy answers `status` with `reason`, closes, never reaches the upstream, and writes
    exactly one audit record saying so."""
    got, fields, body = parse_response(ch.exchange(data, sni=sni))
    assert got == status, (got, fields, body)
    assert reason.encode() in body, body
    time.sleep(0.2)  # a negative check: give a wrongly forwarded request time to land
    assert ch.upstream.requests_for(path_prefix) == [], ch.upstream.requests_for(path_prefix)
    recs = ch.inner_records()
    assert len(recs) == 1, recs
    a = audit.check_shape(recs[0])
    assert a["action"] == "reject" and a["status_code"] == status, recs[0]
    assert reason in recs[0].get("error", ""), recs[0]


# --- 1. absolute-form target + another Host -----------------------------------------------------

@pytest.mark.parametrize("kind", ALL_CHANNELS)
def test_absolute_form_authority_replaces_host(make_channel, kind):
    """`GET http://allowed.test/… ` + `Host: denied.test`: the origin (reached at allowed.test's
    address) must be told allowed.test, the secret bound to allowed.test is swapped for a request
    that names allowed.test only, and the audit says the same host."""
    ch = make_channel(kind, env={"E2E_SECRET": REAL},
                      transforms=[allowlist_transform("allowed.test"), secret_header_transform(PH)])
    req = (f"GET {ch.scheme}://{ch.authority}/echo/abs HTTP/1.1\r\nHost: denied.test:{ch.port}\r\n"
           f"Authorization: Bearer {PH}\r\nConnection: close\r\n\r\n").encode()
    status, fields, body = parse_response(ch.exchange(req))
    assert status == 200, (status, fields, body)
    [seen] = ch.upstream.requests_for("/echo/abs")
    hosts = [v for k, v in seen["headers"] if k.lower() == "host"]
    assert hosts == [ch.authority], seen
    assert "denied.test" not in json.dumps(seen), seen
    assert seen["raw_target"] == "/echo/abs", seen  # origin-form upstream
    [rec] = ch.inner_records()
    assert rec["audit"]["host"] == ch.authority, rec
    assert REAL not in ch.proxy.audit_path.read_text()


@pytest.mark.parametrize("kind", ALL_CHANNELS)
def test_absolute_form_denied_authority_with_allowed_host_is_refused(make_channel, kind):
    """The mirror image: the target names denied.test, Host names allowed.test. Policy judges the
    target (403), or on TLS it is fronting against the SNI (400); the origin never hears of it."""
    ch = make_channel(kind)
    req = (f"GET {ch.scheme}://denied.test:{ch.port}/echo/mirror HTTP/1.1\r\nHost: {ch.authority}\r\n"
           f"Connection: close\r\n\r\n").encode()
    status, fields, body = parse_response(ch.exchange(req))
    expected = 400 if kind in TLS_CHANNELS else 403
    assert status == expected, (status, fields, body)
    if kind in TLS_CHANNELS:
        assert body == b"SNI and Host header mismatch\n", body
    time.sleep(0.2)
    assert ch.upstream.requests_for("/echo/mirror") == []
    [rec] = ch.inner_records()
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == expected, rec
    assert a["host"] == f"denied.test:{ch.port}", rec


# --- 2. duplicate Host ---------------------------------------------------------------------------

@pytest.mark.parametrize("second", ["denied", "same"])
@pytest.mark.parametrize("kind", ALL_CHANNELS)
def test_duplicate_host_is_400(make_channel, kind, second):
    ch = make_channel(kind)
    other = f"denied.test:{ch.port}" if second == "denied" else ch.authority
    req = (f"GET /echo/dup HTTP/1.1\r\nHost: {ch.authority}\r\nX-Between: 1\r\nHost: {other}\r\n"
           f"Connection: close\r\n\r\n").encode()
    assert_refused(ch, req, 400, "multiple Host header fields")


def test_duplicate_host_with_absolute_form_is_400(make_channel):
    ch = make_channel("plain")
    req = (f"GET http://{ch.authority}/echo/dup HTTP/1.1\r\nHost: {ch.authority}\r\n"
           f"Host: denied.test:{ch.port}\r\nConnection: close\r\n\r\n").encode()
    assert_refused(ch, req, 400, "multiple Host header fields")


# HTTP/2: Host lines next to :authority (RFC 9113 §8.3.1) and twice.
H2_HOST_CASES = {
    "authority-and-other-host": [("host", "denied.test:{port}")],
    "two-hosts-other": [("host", "allowed.test:{port}"), ("host", "denied.test:{port}")],
    "two-hosts-same": [("host", "allowed.test:{port}"), ("host", "allowed.test:{port}")],
}


@pytest.mark.parametrize("authority", [True, False], ids=["with-authority", "no-authority"])
@pytest.mark.parametrize("case", list(H2_HOST_CASES))
def test_h2_host_fields_beyond_authority_are_refused(proxy_factory, https_upstream, ca_cert, case, authority):
    """A 400 or RST_STREAM(PROTOCOL_ERROR), audited either way (a reject record with the
    reason); the origin never sees the request."""
    if case == "authority-and-other-host" and not authority:
        pytest.skip("one host field and no :authority is an ordinary request")
    port = https_upstream.port
    p = proxy_factory.start(https_listen=f"127.0.0.1:{port}")
    extra = [(k, v.format(port=port)) for k, v in H2_HOST_CASES[case]]
    pseudo = [(":method", "GET"), (":scheme", "https"), (":path", "/echo/h2-host")]
    if authority:
        pseudo.insert(2, (":authority", f"allowed.test:{port}"))
    with H2Client.connect(("127.0.0.1", port), "allowed.test", ca_cert, raw=True) as c:
        res = c.wait(c.request("GET", "/echo/h2-host", None, headers=extra, pseudo=pseudo))
        assert c.terminated is None and not c.closed, c.terminated
        after = c.wait(c.request("GET", "/echo/after", f"allowed.test:{port}"))
        assert after.status == 200, after
    if res.status == 0:
        assert res.reset_code == PROTOCOL_ERROR, res
    else:
        assert res.status == 400, res
    [rec] = p.wait_audit(1, predicate=lambda r: r["audit"]["action"] == "reject")
    assert rec["audit"]["status_code"] == 400 and rec.get("error"), rec
    time.sleep(0.2)
    assert https_upstream.requests_for("/echo/h2-host") == []


# --- 3. Transfer-Encoding vs Content-Length ------------------------------------------------------

# Becomes a request of its own at the origin if a hop frames the body otherwise than we do.
SMUGGLED = b"0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: allowed.test\r\n\r\n"

JUNK_CODINGS = {
    "chunked-identity": "chunked, identity",
    "xchunked": "xchunked",
    "identity": "identity",
    "nbsp-chunked": "\xa0chunked",
    "chunked": "chunked",
}


def post_head(authority, fields, version="HTTP/1.1", path="/echo/te"):
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields)
    return f"POST {path} {version}\r\nHost: {authority}\r\n{lines}Connection: close\r\n\r\n".encode("latin-1")


@pytest.mark.parametrize("order", ["te-first", "cl-first"])
@pytest.mark.parametrize("coding", list(JUNK_CODINGS))
def test_transfer_encoding_with_content_length_is_400_in_any_order(make_channel, coding, order):
    ch = make_channel("plain")
    te = ("Transfer-Encoding", JUNK_CODINGS[coding])
    cl = ("Content-Length", str(len(SMUGGLED)))
    fields = [te, cl] if order == "te-first" else [cl, te]
    data = post_head(ch.authority, fields) + SMUGGLED
    got, _, body = parse_response(ch.exchange(data))
    assert got == 400, body
    time.sleep(0.2)
    assert ch.upstream.requests == [], ch.upstream.requests
    [rec] = ch.inner_records()
    assert rec["audit"]["action"] == "reject" and rec["audit"]["status_code"] == 400, rec
    assert rec.get("error"), rec


@pytest.mark.parametrize("kind", ALL_CHANNELS)
def test_xchunked_before_content_length_refused_on_every_channel(make_channel, kind):
    ch = make_channel(kind)
    data = post_head(ch.authority, [("Transfer-Encoding", "xchunked"), ("Content-Length", str(len(SMUGGLED)))])
    assert_refused(ch, data + SMUGGLED, 400, "both Transfer-Encoding and Content-Length", path_prefix="/")


TE_ALONE = {
    # name: (Transfer-Encoding value, status, reason)
    "gzip": ("gzip", 400, "Transfer-Encoding does not end with chunked"),
    "chunked-chunked": ("chunked, chunked", 400, "malformed Transfer-Encoding"),
    "gzip-chunked": ("gzip, chunked", 501, "unsupported transfer coding"),
    "chunked-param": ("chunked;x=1", 400, "malformed Transfer-Encoding"),
}


@pytest.mark.parametrize("case", list(TE_ALONE))
def test_transfer_encoding_not_exactly_chunked_is_refused(make_channel, case):
    """Without Content-Length: a coding list that does not end in a lone chunked leaves the body
    length unknowable (400) or needs a coding the proxy does not implement (501). The old reading
    of "gzip" was "no body", so the body came through as the next request."""
    ch = make_channel("plain")
    value, status, reason = TE_ALONE[case]
    data = (f"POST /echo/te HTTP/1.1\r\nHost: {ch.authority}\r\nTransfer-Encoding: {value}\r\n\r\n"
            .encode() + SMUGGLED)
    assert_refused(ch, data, status, reason, path_prefix="/")


def test_transfer_encoding_in_http10_is_400(make_channel):
    ch = make_channel("plain")
    data = post_head(ch.authority, [("Transfer-Encoding", "chunked")], version="HTTP/1.0") + b"5\r\nhello\r\n0\r\n\r\n"
    assert_refused(ch, data, 400, "Transfer-Encoding in an HTTP/1.0 request", path_prefix="/")


@pytest.mark.parametrize("values", [["5", "5"], ["5, 5"]], ids=["two-lines", "list"])
def test_content_length_must_be_one_plain_number(make_channel, values):
    ch = make_channel("plain")
    data = post_head(ch.authority, [("Content-Length", v) for v in values]) + b"hello"
    reason = "multiple Content-Length fields" if len(values) > 1 else "malformed Content-Length"
    assert_refused(ch, data, 400, reason, path_prefix="/")


@pytest.mark.parametrize("value", ["chunked", " CHUNKED\t", "chunked,"])
@pytest.mark.parametrize("kind", ["plain", "mitm"])
def test_lone_chunked_still_works(make_channel, kind, value):
    ch = make_channel(kind)
    data = post_head(ch.authority, [("Transfer-Encoding", value)]) + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    got, _, body = parse_response(ch.exchange(data))
    assert got == 200, body
    [seen] = ch.upstream.requests_for("/echo/te")
    assert seen["body"] == "hello world", seen
    assert not ch.upstream.requests_for("/echo/smuggled")


# --- 4. underscore spellings of framing, routing and credential fields --------------------------

UNDERSCORE_ALIASES = {
    # name: (field line, the field it aliases)
    "transfer-encoding": ("Transfer_Encoding: chunked", "Transfer-Encoding"),
    "content-length": ("Content_Length: 5", "Content-Length"),
    "host": ("Host_: denied.test", "Host"),
    "proxy-authorization": ("proxy_authorization: Basic dXNlcjpwdw==", "Proxy-Authorization"),
}


@pytest.fixture
def raw_channel(proxy_factory, raw_plain, raw_tls, ca_cert):
    """raw_channel(kind) → a Channel whose upstream is harness/raw_upstream.py, a lenient origin
    that keeps every request head exactly as it arrived (`heads`)."""
    def make(kind):
        p = proxy_factory.start(https_listen=f"127.0.0.1:{raw_tls.port}")
        return Channel(kind, p, raw_plain, raw_tls, ca_cert)
    return make


@pytest.mark.parametrize("alias", list(UNDERSCORE_ALIASES))
@pytest.mark.parametrize("kind", ["plain", "mitm"])
def test_underscore_alias_of_a_framing_field_is_400(raw_channel, kind, alias):
    ch = raw_channel(kind)
    line, field = UNDERSCORE_ALIASES[alias]
    req = (f"POST /underscore HTTP/1.1\r\nHost: {ch.authority}\r\n{line}\r\nContent-Length: 5\r\n"
           f"Connection: close\r\n\r\nhello").encode()
    reason = f"header name with underscore aliases {field}"
    status, fields, body = parse_response(ch.exchange(req))
    time.sleep(0.2)  # a negative check: give a wrongly forwarded request time to land
    assert ch.upstream.heads == [], ch.upstream.heads
    assert status == 400, (status, fields, body)
    assert reason.encode() in body, body
    [rec] = ch.inner_records()
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 400, rec
    assert reason in rec.get("error", ""), rec


@pytest.mark.parametrize("kind", ["plain", "mitm"])
def test_other_underscore_names_pass_unchanged(raw_channel, kind):
    """As the Go proxy: a name with '_' that aliases nothing the proxy judges reaches the origin
    byte for byte."""
    ch = raw_channel(kind)
    req = (f"GET /underscore-ok HTTP/1.1\r\nHost: {ch.authority}\r\nX_Trace_Id: abc_1\r\n"
           f"Connection: close\r\n\r\n").encode()
    status, fields, body = parse_response(ch.exchange(req))
    assert status == 200, (status, fields, body)
    [head] = ch.upstream.heads
    assert "\r\nX_Trace_Id: abc_1" in head, head


@pytest.mark.parametrize("alias", ["content_length", "transfer_encoding", "host_"])
def test_h2_underscore_alias_is_400(proxy_factory, raw_tls, ca_cert, alias):
    """The same rule for an HTTP/2 client (here translated to the HTTP/1.1 origin, where the
    alias would land as a field of its own)."""
    port = raw_tls.port
    p = proxy_factory.start(https_listen=f"127.0.0.1:{port}")
    with H2Client.connect(("127.0.0.1", port), "allowed.test", ca_cert, raw=True) as c:
        res = c.wait(c.request("GET", "/underscore-h2", f"allowed.test:{port}", headers=[(alias, "5")]))
        after = c.wait(c.request("GET", "/after", f"allowed.test:{port}"))
        assert after.status == 200, after
    assert res.status == 400, res
    recs = p.wait_audit(2)
    [rec] = [r for r in recs if r["audit"]["action"] == "reject"]
    assert "header name with underscore aliases" in rec.get("error", ""), rec
    assert not [h for h in raw_tls.heads if "/underscore-h2" in h], raw_tls.heads


# --- the response direction -----------------------------------------------------------------------

class RawUpstream:
    """Answers every connection with fixed bytes, then closes (127.0.0.2, one thread, bounded)."""

    def __init__(self, response: bytes):
        self.response = response
        self.sock = socket.create_server(("127.0.0.2", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_flag = threading.Event()
        self.thread = start_accepting(self.sock, self.stop_flag, self._serve, "fixed-response", seconds=120)

    def _serve(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                clients.read_head(conn, timeout=5)
                conn.sendall(self.response)
                conn.shutdown(socket.SHUT_WR)
                time.sleep(0.2)
            except OSError:
                pass

    def close(self):
        self.stop_flag.set()
        self.thread.join(timeout=5)
        self.sock.close()


def fetch_raw_response(proxy_factory, response: bytes):
    """A proxy, and what a plain-listener client receives when the origin answers `response`:
    (proxy, (status, fields, body))."""
    up = RawUpstream(response)
    try:
        p = proxy_factory.start()
        sock = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
        try:
            sock.sendall(f"GET /r HTTP/1.1\r\nHost: allowed.test:{up.port}\r\nConnection: close\r\n\r\n".encode())
            data = read_until_closed(sock, 5)
        finally:
            sock.close()
    finally:
        up.close()
    status, fields, body = parse_response(data)
    return p, (status, fields, body)


@pytest.mark.parametrize("order", ["te-first", "cl-first"])
def test_response_with_both_framings_never_reaches_the_client_ambiguous(proxy_factory, order):
    """An origin answering with Transfer-Encoding: chunked and Content-Length: the client gets
    either an error or a response framed one way only (chunked, the length dropped)."""
    te, cl = b"Transfer-Encoding: chunked\r\n", b"Content-Length: 3\r\n"
    framing = te + cl if order == "te-first" else cl + te
    p, (status, fields, body) = fetch_raw_response(
        proxy_factory, b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n5\r\nhello\r\n0\r\n\r\n")
    assert status in (200, 502), (status, fields, body)
    if status == 200:
        assert header_values(fields, "content-length") == [], fields
        assert header_values(fields, "transfer-encoding") == ["chunked"], fields
        assert body == b"5\r\nhello\r\n0\r\n\r\n", body
    [rec] = p.wait_audit(1)
    assert rec["audit"]["status_code"] == status, rec


@pytest.mark.parametrize("coding", ["xchunked", "chunked, identity", "identity", "gzip"])
def test_response_with_bad_transfer_coding_before_length_is_502(proxy_factory, coding):
    """Beast frames `Transfer-Encoding: xchunked` + Content-Length by the length and leaves the
    rest in the pooled connection; a client behind the proxy could read it otherwise. The proxy
    refuses the response (502, audited as an error) instead of relaying either reading."""
    framing = f"Transfer-Encoding: {coding}\r\nContent-Length: 3\r\n".encode()
    p, (status, fields, body) = fetch_raw_response(
        proxy_factory, b"HTTP/1.1 200 OK\r\n" + framing + b"\r\nabcGET /smuggled HTTP/1.1\r\n\r\n")
    assert status == 502, (status, fields, body)
    [rec] = p.wait_audit(1)
    assert rec["audit"]["status_code"] == 502, rec
    assert rec["audit"]["action"] == "error", rec
    assert "ambiguous response framing" in rec.get("error", ""), rec
