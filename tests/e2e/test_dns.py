"""DNS server (Go's answers, plus TCP, EDNS and truncation, which Go lacks; issue 4): dig and
dnspython against the proxy's UDP and TCP listener. A → proxy_ip, static records win, passthrough
relays the test DNS fixture's answer, other types are empty, several queries share one TCP
connection, truncation sends UDP clients to TCP, and a few thousand malformed datagrams neither
crash it nor stop it answering.

The proxy logs `dns server starting` with the bound address (listen is 127.0.0.1:0); that is how
the tests find the port. Builds that refuse `dns.enabled: true` skip this module."""
import random
import shutil
import socket
import struct
import subprocess
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from harness.proxy import split_addr

PROXY_IP = "10.9.8.7"
MANY = 40  # static AAAA records for many.test: a reply over 512 bytes


def _dns_section(dns_addr):
    records = [
        {"name": "static.test", "type": "A", "value": "192.0.2.10"},
        # allowed.test is also under the passthrough glob: the static record must win.
        {"name": "allowed.test", "type": "A", "value": "192.0.2.11"},
        {"name": "alias.test", "type": "CNAME", "value": "allowed.test"},
    ]
    records += [{"name": "many.test", "type": "AAAA", "value": f"2001:db8::{i + 1:x}"} for i in range(MANY)]
    return {
        "enabled": True,
        "listen": "127.0.0.1:0",
        "proxy_ip": PROXY_IP,
        "records": records,
        "passthrough": ["*.allowed.test", "loop.test"],
        "upstream_resolver": dns_addr,
    }


@pytest.fixture
def dns_proxy(proxy_factory, dns_server):
    p = proxy_factory.start(extra={"dns": _dns_section(dns_server.addr)})
    assert p.wait_stderr("dns server starting", timeout=5), "no 'dns server starting' log line"
    [rec] = [r for r in p.log_records() if r.get("msg") == "dns server starting"][:1]
    host, port = split_addr(rec["addr"])
    assert port != 0, rec
    p.dns_host, p.dns_port = host, port
    return p


def udp(p, name, rdtype="A", **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    return dns.query.udp(q, p.dns_host, port=p.dns_port, timeout=3)


def tcp(p, name, rdtype="A", **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    return dns.query.tcp(q, p.dns_host, port=p.dns_port, timeout=3)


def addresses(msg):
    return sorted(rd.to_text() for rrset in msg.answer for rd in rrset)


def dig(p, *args):
    if shutil.which("dig") is None:
        pytest.skip("dig not installed (dnsutils)")
    cp = subprocess.run(["dig", f"@{p.dns_host}", "-p", str(p.dns_port), "+time=3", "+tries=1", *args],
                        capture_output=True, text=True, timeout=20)
    assert cp.returncode == 0, cp.stderr + cp.stdout
    return cp.stdout


# --- answers -----------------------------------------------------------------------------------

def test_a_query_answers_proxy_ip(dns_proxy):
    r = udp(dns_proxy, "Some.Example.COM.")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.QR and r.flags & dns.flags.AA
    assert not r.flags & dns.flags.RA  # Go compatible: no recursion offered
    assert r.flags & dns.flags.RD  # copied from the query
    [rrset] = r.answer
    assert rrset.name.to_text() == "Some.Example.COM."  # owner exactly as asked
    assert rrset.ttl == 60
    assert addresses(r) == [PROXY_IP]
    assert dig(dns_proxy, "+short", "anything.example", "A").split() == [PROXY_IP]


def test_static_records_win(dns_proxy):
    assert addresses(udp(dns_proxy, "static.test.")) == ["192.0.2.10"]
    assert addresses(udp(dns_proxy, "STATIC.test.")) == ["192.0.2.10"]
    assert addresses(udp(dns_proxy, "allowed.test.")) == ["192.0.2.11"]  # beats *.allowed.test
    r = udp(dns_proxy, "alias.test.", "CNAME")
    assert addresses(r) == ["allowed.test."]
    # Type mismatch falls through: an A query for a CNAME-only name is intercepted (QUIRK kept).
    assert addresses(udp(dns_proxy, "alias.test.")) == [PROXY_IP]


def test_passthrough_relays_the_upstream_answer(dns_proxy, dns_server):
    r = udp(dns_proxy, "sub.allowed.test.")
    assert r.rcode() == dns.rcode.NOERROR
    assert addresses(r) == ["127.0.0.2"]
    assert r.answer[0].ttl == 60
    assert dns_server.queried("sub.allowed.test"), "the fixture was never asked"
    assert addresses(udp(dns_proxy, "loop.test.")) == ["127.0.0.1"]
    assert dig(dns_proxy, "+short", "sub.allowed.test").split() == ["127.0.0.2"]
    # A passthrough name the upstream does not know: empty NOERROR, and a WARN in the log.
    r = udp(dns_proxy, "missing.allowed.test.")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert dns_proxy.wait_stderr("dns passthrough lookup failed", timeout=5)


@pytest.mark.parametrize("rdtype", ["AAAA", "MX", "TXT", "HTTPS"])
def test_other_types_are_empty_noerror(dns_proxy, rdtype):
    for name in ("some.example.", "sub.allowed.test."):
        r = udp(dns_proxy, name, rdtype)
        assert r.rcode() == dns.rcode.NOERROR, (name, rdtype)
        assert r.answer == [], (name, rdtype)
        assert r.flags & dns.flags.AA


def test_every_question_is_answered(dns_proxy):
    q = dns.message.make_query("one.example.", "A")
    q.find_rrset(q.question, dns.name.from_text("static.test."), dns.rdataclass.IN, dns.rdatatype.A,
                 create=True, force_unique=True)
    r = dns.query.udp(q, dns_proxy.dns_host, port=dns_proxy.dns_port, timeout=3, ignore_unexpected=True)
    assert [x.name.to_text() for x in r.question] == ["one.example.", "static.test."]
    got = {rrset.name.to_text(): [rd.to_text() for rd in rrset] for rrset in r.answer}
    assert got == {"one.example.": [PROXY_IP], "static.test.": ["192.0.2.10"]}


# --- TCP and truncation ------------------------------------------------------------------------

def test_tcp_answers(dns_proxy):
    assert addresses(tcp(dns_proxy, "some.example.")) == [PROXY_IP]
    assert addresses(tcp(dns_proxy, "sub.allowed.test.")) == ["127.0.0.2"]
    assert dig(dns_proxy, "+tcp", "+short", "static.test").split() == ["192.0.2.10"]


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def test_several_queries_on_one_tcp_connection(dns_proxy):
    names = ["a.example.", "static.test.", "sub.allowed.test.", "b.example."]
    queries = [dns.message.make_query(n, "A") for n in names]
    with socket.create_connection((dns_proxy.dns_host, dns_proxy.dns_port), timeout=5) as s:
        # The first three pipelined in one write, the last after their answers.
        s.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries[:3])))
        replies = []
        for _ in range(3):
            (n,) = struct.unpack("!H", _recv_exact(s, 2))
            replies.append(dns.message.from_wire(_recv_exact(s, n)))
        w = queries[3].to_wire()
        s.sendall(struct.pack("!H", len(w)) + w)
        (n,) = struct.unpack("!H", _recv_exact(s, 2))
        replies.append(dns.message.from_wire(_recv_exact(s, n)))
    assert [r.id for r in replies] == [q.id for q in queries]
    assert [addresses(r) for r in replies] == [[PROXY_IP], ["192.0.2.10"], ["127.0.0.2"], [PROXY_IP]]


def test_large_answer_truncated_over_udp_complete_over_tcp(dns_proxy):
    r = udp(dns_proxy, "many.test.", "AAAA")  # no EDNS: 512-byte limit
    assert r.flags & dns.flags.TC
    assert r.answer == []
    r = tcp(dns_proxy, "many.test.", "AAAA")
    assert not r.flags & dns.flags.TC
    assert len(addresses(r)) == MANY
    # dig retries over TCP by itself when it sees TC.
    out = dig(dns_proxy, "+short", "+noedns", "many.test", "AAAA").split()
    assert len(out) == MANY


# --- robustness --------------------------------------------------------------------------------

def _mutate(rng, wire):
    b = bytearray(wire)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:
            del b[rng.randrange(len(b) + 1):]
        elif len(b) >= 12:
            b[4 + rng.randrange(8)] = rng.randrange(256)  # section counts
    return bytes(b)


def test_random_and_malformed_packets_do_not_stop_it(dns_proxy):
    rng = random.Random(4)
    seeds = [dns.message.make_query(n, t).to_wire() for n, t in
             (("a.example.", "A"), ("static.test.", "A"), ("many.test.", "AAAA"), ("x.allowed.test.", "TXT"))]
    seeds.append(dns.message.make_query("a.example.", "A", use_edns=0, want_dnssec=True).to_wire())
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        target = (dns_proxy.dns_host, dns_proxy.dns_port)

        def drain():
            nonlocal answered
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    return
                assert len(data) >= 12 and data[2] & 0x80, f"a reply without QR: {data[:16].hex()}"
                answered += 1

        for i in range(3000):
            if i % 3 == 0:
                pkt = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            else:
                pkt = _mutate(rng, rng.choice(seeds))
            s.sendto(pkt, target)
            if i % 100 == 99:
                time.sleep(0.01)  # let replies come back instead of overflowing our buffer
                drain()
        time.sleep(0.2)
        drain()
    assert answered > 0
    assert dns_proxy.alive(), "the proxy died:\n" + dns_proxy.stderr_text()[-3000:]
    assert addresses(udp(dns_proxy, "after.example.")) == [PROXY_IP]
    assert addresses(tcp(dns_proxy, "after.example.")) == [PROXY_IP]
