"""Self-tests of the fixtures (no proxy involved): the DNS server answers, the upstreams echo,
stream, count connections and delay as the other tests rely on, and curl talks to them."""
import json
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from harness import clients, yamlgen
from harness.configs import TestBed, make_config


def _query(server, name, rdtype="A", tcp=False):
    q = dns.message.make_query(name, rdtype)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=server.port, timeout=3)


def test_dns_answers_a_for_known_names(dns_server):
    r = _query(dns_server, "allowed.test")
    assert r.rcode() == dns.rcode.NOERROR
    ips = [rd.address for rrset in r.answer for rd in rrset]
    assert ips == ["127.0.0.2"]
    r = _query(dns_server, "LOOP.test.")
    assert [rd.address for rrset in r.answer for rd in rrset] == ["127.0.0.1"]
    assert dns_server.queried("allowed.test")


def test_dns_nxdomain_and_empty_aaaa(dns_server):
    assert _query(dns_server, "nosuch.test").rcode() == dns.rcode.NXDOMAIN
    aaaa = _query(dns_server, "allowed.test", "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer


def test_dns_over_tcp(dns_server):
    if dns_server.tcp is None:
        pytest.skip("TCP port was taken")
    r = _query(dns_server, "other.test", tcp=True)
    assert [rd.address for rrset in r.answer for rd in rrset] == ["127.0.0.2"]


def test_dig_can_use_the_test_dns(dns_server):
    cp = subprocess.run(["dig", "+short", "+time=2", "+tries=1", "-p", str(dns_server.port),
                         "@127.0.0.1", "denied.test", "A"], capture_output=True, text=True, timeout=15)
    assert cp.stdout.strip() == "127.0.0.2", cp


def test_http_upstream_echo(http_upstream):
    r = clients.curl(f"http://127.0.0.2:{http_upstream.port}/echo/x?a=1&b=2", method="POST",
                     data="hello", headers=["X-Test: yes"])
    assert r.http_code == 200, r
    echo = r.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo/x"
    assert echo["query"] == "a=1&b=2"
    assert echo["body"] == "hello"
    assert ["X-Test", "yes"] in echo["headers"]
    assert echo["tls"] is False


def test_https_upstream_echo_with_upstream_ca(https_upstream, upstream_pki):
    port = https_upstream.port
    r = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.2",
                     cacert=upstream_pki.ca_path)
    assert r.http_code == 200, r
    assert r.json()["tls"] is True
    assert r.json()["server"] == "https-upstream"


def test_https_upstream_port_is_free_on_127_0_0_1(https_upstream):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", https_upstream.port))
    finally:
        s.close()


@pytest.mark.parametrize("chunked", [False, True])
def test_upstream_bytes_exact(http_upstream, chunked):
    n = 1_000_003
    url = f"http://127.0.0.2:{http_upstream.port}/bytes/{n}" + ("?chunked=1" if chunked else "")
    r = clients.curl(url)
    assert r.http_code == 200, r
    assert len(r.body) == n
    assert r.body[:16] == b"0123456789abcdef"


def test_upstream_counts_connections_with_keepalive(https_upstream, upstream_pki):
    sock = socket.create_connection(("127.0.0.2", https_upstream.port), timeout=5)
    tls = clients.tls_wrap(sock, "allowed.test", upstream_pki.ca_path)
    conn = clients.SocketHTTPConnection(tls, f"allowed.test:{https_upstream.port}")
    for i in range(20):
        conn.request("GET", f"/echo?i={i}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read())["query"] == f"i={i}"
    conn.close()
    assert https_upstream.connections == 1
    assert len(https_upstream.requests_for("/echo")) == 20


def test_upstream_slow_delays_headers(http_upstream):
    t0 = time.monotonic()
    r = clients.curl(f"http://127.0.0.2:{http_upstream.port}/slow?s=1")
    assert r.http_code == 200
    assert time.monotonic() - t0 >= 0.9


def test_yaml_emitter_roundtrip(tmp_path, dns_server, upstream_pki):
    yaml = pytest.importorskip("yaml")
    bed = TestBed(tmp_path, dns_server.addr, tmp_path / "ca.crt", tmp_path / "ca.key",
                  upstream_pki.ca_path)
    cfg = make_config(bed, warn=True, rules=[{"host": "x.test", "methods": ["GET"]}])
    assert yaml.safe_load(yamlgen.dump(cfg)) == cfg


@pytest.mark.parametrize("chunked", [False, True])
def test_upstream_sink_counts_upload(http_upstream, tmp_path, chunked):
    f = tmp_path / "up.bin"
    f.write_bytes(b"z" * 3_000_001)
    headers = ["Transfer-Encoding: chunked"] if chunked else []
    r = clients.curl(f"http://127.0.0.2:{http_upstream.port}/sink", method="POST",
                     extra=["-T", str(f)], headers=headers)
    assert r.http_code == 200, r
    assert r.json() == {"length": 3_000_001}
    [rec] = http_upstream.requests_for("/sink")
    assert rec["body_length"] == 3_000_001 and rec["body"] == ""


def test_sanitizer_reports_are_recognised():
    """The lines conftest.py's no_sanitizer_report fixture fails a test on (sanitizer builds)."""
    from harness.proxy import is_sanitizer_line
    for line in [
        "==12345==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010",
        "==77==ERROR: LeakSanitizer: detected memory leaks",
        "../src/http/messages.cpp:42:17: runtime error: signed integer overflow",
        "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior ../src/a.cpp:1:2 in",
        "SUMMARY: AddressSanitizer: 64 byte(s) leaked in 1 allocation(s).",
    ]:
        assert is_sanitizer_line(line), line
    for line in [
        '{"level":"INFO","msg":"iron-proxy ready"}',
        '{"msg":"request","audit":{"path":"/runtime error: x"}}',
        "error: cfg.yaml:5:7: proxy.upstream_deny_cidrs[0]: invalid CIDR",
    ]:
        assert not is_sanitizer_line(line), line
