"""SOCKS5 on the tunnel listener (issue 4): curl --socks5-hostname and --socks5,
HTTPS (MITM) and plain HTTP, allowed and denied, RFC-correct replies on the wire."""
import socket
import struct

from harness import audit, clients


def _socks_url(proxy, hostname=True):
    scheme = "socks5h" if hostname else "socks5"
    return f"{scheme}://127.0.0.1:{proxy.tunnel_port}"


def test_socks5_hostname_https_allowed(proxy, https_upstream, ca_cert):
    port = https_upstream.port
    r = clients.curl(f"https://allowed.test:{port}/echo", proxy=_socks_url(proxy), cacert=ca_cert)
    assert r.exit_code == 0, r
    assert r.http_code == 200, r
    assert r.json()["server"] == "https-upstream"
    recs = proxy.wait_audit(2)
    [conn] = audit.connect_records(recs)
    assert conn["audit"]["host"] == f"allowed.test:{port}"
    assert conn["audit"]["action"] == "allow"
    [inner] = audit.inner_records(recs)
    assert inner["tunnel"]["target"] == f"allowed.test:{port}"
    assert inner["audit"]["path"] == "/echo"


def test_socks5_hostname_denied(proxy, https_upstream, ca_cert):
    r = clients.curl(f"https://denied.test:{https_upstream.port}/", proxy=_socks_url(proxy), cacert=ca_cert)
    assert r.exit_code != 0, r
    assert https_upstream.connections == 0
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "reject"
    assert rec["rejected_by"] == "allowlist"
    assert rec["level"] == "WARN"


def test_socks5_ip_form_plain_http(proxy_factory, http_upstream):
    # --socks5 resolves locally and sends an IPv4 address; the allowlist sees the literal IP.
    p = proxy_factory.start(domains=["allowed.test"], cidrs=["127.0.0.2/32"])
    r = clients.curl(f"http://127.0.0.2:{http_upstream.port}/echo", proxy=_socks_url(p, hostname=False))
    assert r.exit_code == 0, r
    assert r.http_code == 200, r
    assert r.json()["server"] == "http-upstream"
    recs = p.wait_audit(2)
    [conn] = audit.connect_records(recs)
    assert conn["audit"]["host"] == f"127.0.0.2:{http_upstream.port}"


def test_socks5_ip_form_denied(proxy, http_upstream):
    r = clients.curl(f"http://127.0.0.2:{http_upstream.port}/", proxy=_socks_url(proxy, hostname=False))
    assert r.exit_code != 0, r
    assert http_upstream.connections == 0


def _exchange(port, payload, want):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while len(data) < want:
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
        return data


def test_socks5_method_rejection_is_two_bytes(proxy):
    # Only username/password offered: RFC 1928 says reply 05 FF (two bytes) and close.
    assert _exchange(proxy.tunnel_port, b"\x05\x01\x02", 16) == b"\x05\xff"
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "reject"


def test_socks5_bind_command_not_supported(proxy):
    req = b"\x05\x01\x00" + b"\x05\x02\x00\x01" + socket.inet_aton("127.0.0.2") + struct.pack(">H", 80)
    reply = _exchange(proxy.tunnel_port, req, 12)
    assert reply[:2] == b"\x05\x00"
    assert reply[2:4] == b"\x05\x07", reply


def test_socks5_pipelined_bytes_reach_the_tunnel(proxy, http_upstream):
    # Greeting, request and the HTTP request sent in one write, before any reply: nothing is lost.
    port = http_upstream.port
    host = b"allowed.test"
    req = (b"\x05\x01\x00" + b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", port)
           + b"GET /echo HTTP/1.1\r\nHost: allowed.test:%d\r\nConnection: close\r\n\r\n" % port)
    with socket.create_connection(("127.0.0.1", proxy.tunnel_port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data[:2] == b"\x05\x00"
    assert data[2:12] == b"\x05\x00\x00\x01" + b"\x00" * 6
    assert b"HTTP/1.1 200" in data[12:], data[:200]
