"""Upstream proxy chaining (proxy.upstream_proxy, HTTP(S)_PROXY / NO_PROXY): a real Squid and a
small SOCKS5 server as parents. The test origins are on 127.0.0.2 and named allowed.test (the test
DNS, and the parents' own resolution, map the name there): a name, not a loopback literal, so it
is proxied; `localhost` and loopback IP literals never are."""
import socket
import ssl
import threading
import time

import pytest

from harness import audit, clients
from harness.parent_proxies import SQUID, Socks5Parent, SquidParent, free_port
from harness.proxy import run_binary

pytestmark = pytest.mark.skipif(not SQUID or not __import__("os").path.exists(SQUID),
                                reason="squid is not installed (scripts/install-deps.sh)")

HOSTS = {"allowed.test": "127.0.0.2", "denied.test": "127.0.0.2"}
SECRET = "pw-Zq81-never-logged"
MINIMAL = "dns:\n  enabled: false\ntls:\n  mode: sni-only\n"


@pytest.fixture
def squid():
    s = SquidParent(HOSTS).start()
    yield s
    s.stop()


@pytest.fixture
def socks():
    s = Socks5Parent(resolve=HOSTS).start()
    yield s
    s.stop()


def chained(proxy_factory, https_upstream, *, http_proxy=None, https_proxy=None, no_proxy=None, env=None,
            **kw):
    up = {}
    for key, value in (("http_proxy", http_proxy), ("https_proxy", https_proxy), ("no_proxy", no_proxy)):
        if value is not None:
            up[key] = value
    extra = dict(kw.pop("proxy_extra", {}))
    if up:
        extra["upstream_proxy"] = up
    return proxy_factory.start(https_listen=f"127.0.0.1:{https_upstream.port}", proxy_extra=extra, env=env, **kw)


def get_plain(proxy, port, path="/echo", host="allowed.test"):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}", headers=[f"Host: {host}:{port}"])


def get_tls(proxy, port, ca_cert, path="/echo", host="allowed.test"):
    return clients.curl(f"https://{host}:{port}{path}", proxy=proxy.tunnel_url, cacert=ca_cert)


def raw_plain(proxy, port, host="allowed.test") -> bytes:
    """GET /echo on the plain listener; the whole reply (head and the body, which is short)."""
    s = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    try:
        s.sendall(f"GET /echo HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def header(echo, name):
    return {k.lower(): v for k, v in echo["headers"]}.get(name.lower())


def no_secret_anywhere(proxy, *texts):
    everything = proxy.stderr_text() + proxy.stdout_text() + "".join(texts)
    if proxy.audit_path and proxy.audit_path.exists():
        everything += proxy.audit_path.read_text()
    assert SECRET not in everything


# --- Squid: absolute form for plain HTTP, CONNECT for TLS --------------------------------------------

def test_plain_http_goes_to_squid_in_absolute_form(proxy_factory, https_upstream, http_upstream, squid):
    p = chained(proxy_factory, https_upstream, http_proxy=squid.url)
    r = get_plain(p, http_upstream.port, "/echo?q=1")
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["path"] == "/echo" and echo["query"] == "q=1"
    assert "squid" in (header(echo, "Via") or ""), echo["headers"]  # it came through the parent
    assert f"GET http://allowed.test:{http_upstream.port}/echo?q=1 200" in squid.access_lines()
    [rec] = p.wait_audit(1)
    assert rec["audit"]["action"] == "allow" and rec["audit"]["status_code"] == 200


def test_https_mitm_goes_through_squid_connect(proxy_factory, https_upstream, squid, ca_cert):
    p = chained(proxy_factory, https_upstream, https_proxy=squid.url)
    for _ in range(2):  # the second request reuses the pooled tunnel or opens another: both via Squid
        r = get_tls(p, https_upstream.port, ca_cert)
        assert r.http_code == 200, r
        assert r.json()["tls"] is True
    p.stop()  # Squid logs a tunnel when it closes; the proxy kept it pooled
    lines = squid.access_lines()
    assert any(line.startswith(f"CONNECT allowed.test:{https_upstream.port} ") for line in lines), lines
    assert not any(line.startswith("GET") for line in lines), lines  # TLS stays end to end


def test_proxy_authorization_from_userinfo(proxy_factory, https_upstream, http_upstream, ca_cert):
    squid = SquidParent(HOSTS, users={"alice": SECRET}).start()
    try:
        url = f"http://alice:{SECRET}@127.0.0.1:{squid.port}"
        p = chained(proxy_factory, https_upstream, http_proxy=url, https_proxy=url)
        assert get_tls(p, https_upstream.port, ca_cert).http_code == 200
        r = get_plain(p, http_upstream.port)
        assert r.http_code == 200, r
        # The parent's credentials go to the parent only, never on to the origin.
        assert header(r.json(), "Proxy-Authorization") is None
        p.stop()  # Squid logs a tunnel when it closes; the proxy kept it pooled
        lines = squid.access_lines()
        assert any(line.startswith("CONNECT ") and line.endswith(" 200") for line in lines), lines
        assert any(line.startswith("GET http://") and line.endswith(" 200") for line in lines), lines
        assert "(from" not in p.stderr_text()
        assert "alice:***@" in p.stderr_text()  # the start-up line names the parent, redacted
        no_secret_anywhere(p)
    finally:
        squid.stop()


def test_wrong_credentials_are_a_truthful_502(proxy_factory, https_upstream, http_upstream, ca_cert):
    squid = SquidParent(HOSTS, users={"alice": "the-right-one"}).start()
    try:
        url = f"http://alice:{SECRET}@127.0.0.1:{squid.port}"
        p = chained(proxy_factory, https_upstream, http_proxy=url, https_proxy=url,
                    proxy_extra={"deny_body": "reason"})
        tls = get_tls(p, https_upstream.port, ca_cert)
        assert tls.http_code == 502, tls
        plain = raw_plain(p, http_upstream.port)
        assert plain.startswith(b"HTTP/1.1 502"), plain
        assert b"error=proxy_configuration_error" in plain and b"407" in plain, plain
        recs = p.wait_audit(3)
        errors = [r for r in recs if r["audit"]["action"] == "error"]
        assert len(errors) == 2, recs
        for rec in errors:
            assert rec["audit"]["status_code"] == 502
            assert "407" in rec["error"] and "alice:***@" in rec["error"], rec
        assert https_upstream.connections == 0 and http_upstream.connections == 0
        no_secret_anywhere(p, tls.body.decode(errors="replace"), plain.decode(errors="replace"))
    finally:
        squid.stop()


def test_parent_refusing_connect_is_a_502_with_proxy_status(proxy_factory, https_upstream, ca_cert):
    squid = SquidParent(HOSTS, deny_connect=True).start()
    try:
        p = chained(proxy_factory, https_upstream, https_proxy=squid.url)
        sock, status, head = clients.connect_tunnel(p.addr("tunnel"), f"allowed.test:{https_upstream.port}")
        try:
            tls = clients.tls_wrap(sock, "allowed.test", ca_cert)
            tls.sendall(f"GET /echo HTTP/1.1\r\nHost: allowed.test:{https_upstream.port}\r\n\r\n".encode())
            reply = clients.read_head(tls)
        finally:
            sock.close()
        assert reply.startswith(b"HTTP/1.1 502"), reply
        assert b"destination_unavailable" in reply and b"403" in reply, reply
        [inner] = audit.inner_records(p.wait_audit(2))
        assert inner["audit"]["action"] == "error" and inner["audit"]["status_code"] == 502
        assert "answered 403" in inner["error"], inner
        assert https_upstream.connections == 0
    finally:
        squid.stop()


def test_parent_down_is_a_502_never_a_direct_dial(proxy_factory, https_upstream, http_upstream, ca_cert):
    dead = f"http://127.0.0.1:{free_port()}"
    p = chained(proxy_factory, https_upstream, http_proxy=dead, https_proxy=dead)
    r = get_plain(p, http_upstream.port)
    assert r.http_code == 502, r
    assert get_tls(p, https_upstream.port, ca_cert).http_code == 502
    recs = p.wait_audit(3)
    errors = [r for r in recs if r["audit"]["action"] == "error"]
    assert len(errors) == 2, recs
    for rec in errors:
        assert rec["audit"]["status_code"] == 502
        assert "upstream proxy http://127.0.0.1:" in rec["error"] and "connection refused" in rec["error"], rec
    assert http_upstream.connections == 0 and https_upstream.connections == 0


class MuteParent:
    """A "parent" that accepts and then says nothing (`silent`) or hangs up at once (`close`)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "close":
                conn.close()
            else:
                self.held.append(conn)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.mark.parametrize("mode,status_type,words", [("silent", "connection_timeout", "timeout"),
                                                    ("close", "connection_terminated", "CONNECT")])
def test_parent_that_stalls_or_hangs_up_is_a_truthful_502(proxy_factory, https_upstream, ca_cert, mode, status_type,
                                                          words):
    parent = MuteParent(mode)
    try:
        p = chained(proxy_factory, https_upstream, https_proxy=f"http://127.0.0.1:{parent.port}",
                    proxy_extra={"upstream_connect_timeout": "1s"})
        sock, status, head = clients.connect_tunnel(p.addr("tunnel"), f"allowed.test:{https_upstream.port}")
        try:
            tls = clients.tls_wrap(sock, "allowed.test", ca_cert)
            tls.sendall(f"GET /echo HTTP/1.1\r\nHost: allowed.test:{https_upstream.port}\r\n\r\n".encode())
            reply = clients.read_head(tls, timeout=20)
        finally:
            sock.close()
        assert reply.startswith(b"HTTP/1.1 502"), reply
        assert f"error={status_type}".encode() in reply, reply
        [inner] = audit.inner_records(p.wait_audit(2))
        assert inner["audit"]["action"] == "error" and inner["audit"]["status_code"] == 502
        assert f"upstream proxy http://127.0.0.1:{parent.port}: " in inner["error"] and words in inner["error"], inner
        assert https_upstream.connections == 0
    finally:
        parent.stop()


def test_http2_origin_through_the_parent(proxy_factory, https_upstream, h2_upstream, socks, ca_cert):
    """An HTTP/2 client to an h2-only origin: ALPN h2 is negotiated inside the parent's tunnel."""
    p = chained(proxy_factory, https_upstream, https_proxy=socks.url("socks5h"))
    r = clients.curl(f"https://allowed.test:{h2_upstream.port}/echo/h2", proxy=p.tunnel_url, cacert=ca_cert,
                     extra=["--http2"])
    assert r.http_code == 200, r
    assert r.json()["alpn"] == "h2"
    assert socks.requests == [(3, "allowed.test", h2_upstream.port)]


# --- SOCKS5 --------------------------------------------------------------------------------------

def test_socks5h_sends_the_name_socks5_the_checked_address(proxy_factory, https_upstream, socks, ca_cert):
    p = chained(proxy_factory, https_upstream, https_proxy=socks.url("socks5h"))
    assert get_tls(p, https_upstream.port, ca_cert).http_code == 200
    assert socks.requests == [(3, "allowed.test", https_upstream.port)]
    p.stop()
    q = chained(proxy_factory, https_upstream, https_proxy=socks.url("socks5"))
    assert get_tls(q, https_upstream.port, ca_cert).http_code == 200
    assert socks.requests[1] == (1, "127.0.0.2", https_upstream.port), socks.requests


def test_socks5_username_password(proxy_factory, https_upstream, ca_cert):
    s = Socks5Parent(users={"bob": SECRET}, resolve=HOSTS).start()
    try:
        p = chained(proxy_factory, https_upstream, https_proxy=s.url("socks5h", f"bob:{SECRET}"))
        assert get_tls(p, https_upstream.port, ca_cert).http_code == 200
        assert s.auths == [("bob", SECRET)]
        p.stop()
        q = chained(proxy_factory, https_upstream, https_proxy=s.url("socks5h", "bob:wrong"))
        r = get_tls(q, https_upstream.port, ca_cert)
        assert r.http_code == 502, r
        [inner] = audit.inner_records(q.wait_audit(2))
        assert "SOCKS5 authentication refused" in inner["error"], inner
        no_secret_anywhere(p)
    finally:
        s.stop()


def test_socks5_error_reply_is_a_truthful_502(proxy_factory, https_upstream, ca_cert):
    s = Socks5Parent(resolve=HOSTS, refuse_with=5).start()
    try:
        p = chained(proxy_factory, https_upstream, https_proxy=s.url("socks5h"))
        r = get_tls(p, https_upstream.port, ca_cert)
        assert r.http_code == 502, r
        [inner] = audit.inner_records(p.wait_audit(2))
        assert inner["audit"]["action"] == "error"
        assert "SOCKS5 CONNECT failed: connection refused" in inner["error"], inner
        assert https_upstream.connections == 0
    finally:
        s.stop()


# --- selection: environment, NO_PROXY, loopback --------------------------------------------------

@pytest.mark.parametrize("var", ["HTTPS_PROXY", "https_proxy"])
def test_environment_overrides_config(proxy_factory, https_upstream, socks, ca_cert, var):
    dead = f"http://127.0.0.1:{free_port()}"
    p = chained(proxy_factory, https_upstream, https_proxy=dead, env={var: socks.url("socks5h")})
    assert get_tls(p, https_upstream.port, ca_cert).http_code == 200
    assert socks.requests == [(3, "allowed.test", https_upstream.port)]


def test_no_proxy_from_environment_goes_direct(proxy_factory, https_upstream, socks, ca_cert, upstream_factory):
    other = upstream_factory(tls=True, name="other")
    p = chained(proxy_factory, https_upstream, https_proxy=socks.url("socks5h"),
                env={"NO_PROXY": "nothing.example, .test:%d" % other.port},
                domains=("allowed.test", "other.test"))
    assert get_tls(p, other.port, ca_cert, host="other.test").http_code == 200  # bypassed: direct
    assert socks.requests == []
    assert get_tls(p, https_upstream.port, ca_cert).http_code == 200  # another port: proxied
    assert socks.requests == [(3, "allowed.test", https_upstream.port)]


def test_loopback_literal_never_proxied_but_names_are(proxy_factory, https_upstream, http_upstream, socks):
    p = chained(proxy_factory, https_upstream, http_proxy=socks.url("socks5h"),
                domains=("allowed.test",), cidrs=["127.0.0.0/8"])
    assert get_plain(p, http_upstream.port, host="127.0.0.2").http_code == 200  # loopback literal: direct
    assert socks.requests == []
    assert get_plain(p, http_upstream.port).http_code == 200  # a name: through the parent
    assert socks.requests == [(3, "allowed.test", http_upstream.port)]


# --- security: default deny and deny CIDRs before the parent -------------------------------------

def test_denied_request_never_reaches_the_parent(proxy_factory, https_upstream, http_upstream, socks, ca_cert):
    p = chained(proxy_factory, https_upstream, http_proxy=socks.url("socks5h"), https_proxy=socks.url("socks5h"))
    assert get_plain(p, http_upstream.port, host="denied.test").http_code == 403
    assert get_tls(p, https_upstream.port, ca_cert, host="denied.test").http_connect == 403
    assert socks.requests == []
    assert get_plain(p, http_upstream.port).http_code == 200  # the allowed one does go through it
    assert socks.requests == [(3, "allowed.test", http_upstream.port)]


def test_deny_cidrs_checked_before_asking_the_parent(proxy_factory, https_upstream, http_upstream, dns_server):
    # allowed.test resolves (here) to 127.0.0.2, which is denied: refused before the parent (on
    # 127.0.0.1: operator configuration, exempt) is dialled. far.test resolves here to 127.0.0.3,
    # which is not denied: asked for by name, the parent resolves it itself (to 127.0.0.2, where
    # the origin is) — the residual risk docs/compatibility.md names, and proof the request went
    # through the parent (127.0.0.3 has no origin).
    dns_server.set("far.test", ["127.0.0.3"])
    s = Socks5Parent(resolve={**HOSTS, "far.test": "127.0.0.2"}).start()
    try:
        p = chained(proxy_factory, https_upstream, http_proxy=s.url("socks5h"), deny_cidrs=["127.0.0.2/32"],
                    domains=("allowed.test", "far.test"))
        r = raw_plain(p, http_upstream.port)
        assert r.startswith(b"HTTP/1.1 502"), r
        assert b"error=destination_ip_prohibited" in r, r
        assert s.requests == [] and http_upstream.connections == 0
        [rec] = p.wait_audit(1)
        assert "denied by upstream_deny_cidrs" in rec["error"], rec
        assert get_plain(p, http_upstream.port, host="far.test").http_code == 200
        assert s.requests == [(3, "far.test", http_upstream.port)]
    finally:
        s.stop()


def test_socks5_asks_for_the_next_checked_address_when_one_is_unreachable(proxy_factory, https_upstream,
                                                                           http_upstream, dns_server):
    # multi.test has two addresses here (in whichever order the resolver gives them); the parent
    # reaches the origin through either, but answers "host unreachable" to the first CONNECT, so
    # the proxy must ask for the other address, as a direct dial would try the next one.
    dns_server.set("multi.test", ["127.0.0.3", "127.0.0.2"])
    dns_server.set("nowhere.test", ["127.0.0.3"])
    s = Socks5Parent(resolve={"127.0.0.3": "127.0.0.2"}, refuse_first_with=4).start()
    try:
        p = chained(proxy_factory, https_upstream, http_proxy=s.url("socks5"),
                    domains=("allowed.test", "multi.test", "nowhere.test"))
        r = get_plain(p, http_upstream.port, host="multi.test")
        assert r.http_code == 200, r
        asked = [host for _, host, _ in s.requests]
        assert sorted(asked) == ["127.0.0.2", "127.0.0.3"], s.requests
        # A name with one address that the parent refuses is one truthful 502, asked once.
        s.requests.clear()
        s.refuse_with = 5
        assert get_plain(p, http_upstream.port, host="nowhere.test").http_code == 502
        assert s.requests == [(1, "127.0.0.3", http_upstream.port)], s.requests
    finally:
        s.stop()


def test_name_only_the_parent_can_resolve(proxy_factory, https_upstream, http_upstream):
    """inside.corp has no address here (NXDOMAIN): socks5h:// and CONNECT hand the parent the name;
    socks5://, which must send an address it checked, fails without asking the parent."""
    s = Socks5Parent(resolve={"inside.corp": "127.0.0.2"}).start()
    try:
        p = chained(proxy_factory, https_upstream, http_proxy=s.url("socks5h"), domains=("inside.corp",))
        assert get_plain(p, http_upstream.port, host="inside.corp").http_code == 200
        assert s.requests == [(3, "inside.corp", http_upstream.port)]
        p.stop()
        q = chained(proxy_factory, https_upstream, http_proxy=s.url("socks5"), domains=("inside.corp",))
        r = raw_plain(q, http_upstream.port, host="inside.corp")
        assert r.startswith(b"HTTP/1.1 502") and b"error=dns_error" in r, r
        assert len(s.requests) == 1
    finally:
        s.stop()


# --- WebSocket and sni-only go through the parent too (a deliberate difference from Go) -----------

def test_plain_websocket_tunnels_through_squid(proxy_factory, https_upstream, http_upstream, squid):
    p = chained(proxy_factory, https_upstream, http_proxy=squid.url)
    s = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
    try:
        s.sendall(b"GET /ws-reflect HTTP/1.1\r\nHost: allowed.test:%d\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                  % http_upstream.port)
        head = clients.read_head(s)
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(b"frame-bytes")
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < 11 and time.monotonic() < deadline:
            got += s.recv(64)
        assert got == b"frame-bytes"
    finally:
        s.close()
    lines = squid.access_lines()
    assert any(line.startswith(f"CONNECT allowed.test:{http_upstream.port} ") for line in lines), lines


def test_sni_only_relay_tunnels_through_the_parent(proxy_factory, https_upstream, socks, upstream_factory):
    p = chained(proxy_factory, https_upstream, https_proxy=socks.url("socks5h"), tls_extra={"mode": "sni-only"})
    # The client's hello is relayed to SNI:443 through the parent (which finds nothing there).
    sock, status, head = clients.connect_tunnel(p.addr("tunnel"), "allowed.test:443")
    assert status == 200, head
    try:
        sock.settimeout(5)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with pytest.raises((OSError, ssl.SSLError)):
            ctx.wrap_socket(sock, server_hostname="allowed.test")
    finally:
        sock.close()
    deadline = time.monotonic() + 5
    while not socks.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert socks.requests == [(3, "allowed.test", 443)], socks.requests


# --- https:// parents: TLS to the parent itself ---------------------------------------------------

@pytest.fixture
def tls_squid(upstream_pki):
    """Squid on an https_port with a certificate from the upstream CA (valid for 127.0.0.1), which
    the proxy trusts through proxy.upstream_ca_file."""
    s = SquidParent(HOSTS, tls=(upstream_pki.server.cert_path, upstream_pki.server.key_path)).start()
    yield s
    s.stop()


def test_https_parent_carries_mitm_and_plain_http(proxy_factory, https_upstream, http_upstream, tls_squid,
                                                  ca_cert):
    assert tls_squid.url.startswith("https://")
    p = chained(proxy_factory, https_upstream, http_proxy=tls_squid.url, https_proxy=tls_squid.url)
    for _ in range(2):  # the second request may reuse the pooled connection: both through the parent
        r = get_tls(p, https_upstream.port, ca_cert)
        assert r.http_code == 200, r
        assert r.json()["tls"] is True
    r = get_plain(p, http_upstream.port, "/echo?via=tls")
    assert r.http_code == 200, r
    assert "squid" in (header(r.json(), "Via") or ""), r.json()["headers"]
    p.stop()
    lines = tls_squid.access_lines()
    assert any(line.startswith(f"CONNECT allowed.test:{https_upstream.port} ") for line in lines), lines
    assert f"GET http://allowed.test:{http_upstream.port}/echo?via=tls 200" in lines, lines
    recs = [r for r in p.wait_audit(3) if r["audit"]["method"] != "CONNECT"]
    assert [r["audit"]["status_code"] for r in recs] == [200, 200, 200], recs


def open_fds(pid) -> int:
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_https_parent_bridges_close_with_their_connections(proxy_factory, https_upstream, tls_squid, ca_cert):
    """Each origin connection through an https:// parent holds a TLS session to the parent and a
    socketpair bridge; when the origin hangs up (/close) all of it must go, not pile up."""
    p = chained(proxy_factory, https_upstream, https_proxy=tls_squid.url)
    assert get_tls(p, https_upstream.port, ca_cert, path="/close").http_code == 200
    time.sleep(0.3)
    baseline = open_fds(p.proc.pid)
    for _ in range(30):
        assert get_tls(p, https_upstream.port, ca_cert, path="/close").http_code == 200
    deadline = time.monotonic() + 10
    while open_fds(p.proc.pid) > baseline + 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(p.proc.pid) <= baseline + 4, (baseline, open_fds(p.proc.pid))


def test_https_parent_with_credentials_keeps_them_secret(proxy_factory, https_upstream, upstream_pki, ca_cert):
    squid = SquidParent(HOSTS, users={"alice": SECRET},
                        tls=(upstream_pki.server.cert_path, upstream_pki.server.key_path)).start()
    try:
        url = f"https://alice:{SECRET}@127.0.0.1:{squid.port}"
        p = chained(proxy_factory, https_upstream, https_proxy=url)
        r = get_tls(p, https_upstream.port, ca_cert)
        assert r.http_code == 200, r
        p.stop()
        assert any(line.startswith("CONNECT allowed.test") for line in squid.access_lines())
        no_secret_anywhere(p, r.stdout if hasattr(r, "stdout") else "")
    finally:
        squid.stop()


def test_untrusted_https_parent_is_refused_before_any_request(proxy_factory, https_upstream, http_upstream,
                                                              tmp_path, ca_cert):
    from harness.certs import make_ca, make_server_cert
    other_ca, other_key = make_ca(tmp_path / "other-ca", "not trusted by the proxy")
    rogue = make_server_cert(tmp_path / "other-ca", other_ca, other_key, stem="rogue")
    squid = SquidParent(HOSTS, tls=(rogue.cert_path, rogue.key_path)).start()
    try:
        p = chained(proxy_factory, https_upstream, http_proxy=squid.url, https_proxy=squid.url)
        tls_reply = get_tls(p, https_upstream.port, ca_cert)
        assert tls_reply.http_code == 502, tls_reply
        plain = raw_plain(p, http_upstream.port)
        assert plain.startswith(b"HTTP/1.1 502 "), plain[:200]
        assert b"Proxy-Status: " in plain and b"tls_certificate_error" in plain, plain[:600]
        errors = [r for r in p.wait_audit(2) if r["audit"]["action"] == "error"]
        assert len(errors) == 2, errors
        for rec in errors:
            assert rec["audit"]["status_code"] == 502
            assert f"upstream proxy https://127.0.0.1:{squid.port}: tls handshake: certificate verify failed" \
                in rec["error"], rec
        assert not [line for line in squid.access_lines() if not line.startswith("error:")], squid.access_lines()
        assert http_upstream.connections == 0 and https_upstream.connections == 0
    finally:
        squid.stop()


# --- configuration ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url,why", [("ftp://p:21", "unsupported proxy scheme"),
                                     ("http://p:99999", "invalid proxy port"),
                                     ("socks4://p:1080", "unsupported proxy scheme")])
def test_check_refuses_unusable_urls_with_position(bed, tmp_path, url, why):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"{MINIMAL}proxy:\n  upstream_proxy:\n    https_proxy: \"{url}\"\n")
    r = run_binary(["-config", str(cfg), "-check"])
    assert r.returncode != 0, r
    assert f"{cfg}:7:18: proxy.upstream_proxy.https_proxy: " in r.stderr and why in r.stderr, r.stderr


def test_check_names_the_environment_and_hides_the_password(bed, tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(MINIMAL)
    r = run_binary(["-config", str(cfg), "-check"], env={"HTTP_PROXY": f"gopher://u:{SECRET}@p:70"})
    assert r.returncode != 0, r
    assert "proxy.upstream_proxy.http_proxy (from $HTTP_PROXY): unsupported proxy scheme" in r.stderr, r.stderr
    assert SECRET not in r.stderr + r.stdout
