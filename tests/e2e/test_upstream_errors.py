"""Upstream failures: deny CIDRs (README.md, "Upstream address checks"), header timeout, refused
connections, TLS verification, DNS failure. Status 502 ("bad gateway\n") or 504, always audited
as errors."""
import socket

import pytest

from harness import audit, clients
from harness.configs import OMIT


def _check_error_record(rec, status):
    a = audit.check_shape(rec)
    assert a["action"] == "error", rec
    assert a["status_code"] == status, rec
    assert rec["level"] == "ERROR", rec
    assert isinstance(rec.get("error"), str) and rec["error"], rec
    return a


def test_default_deny_cidrs_block_loopback_via_http_listener(proxy_factory, upstream_factory):
    # A real server on 127.0.0.1:U, allowlisted as loop.test: only the deny list stands in the way.
    up = upstream_factory(host="127.0.0.1", tls=False, name="loop-upstream")
    proxy = proxy_factory.start(deny_cidrs=OMIT)  # key absent ⇒ defaults incl. 127.0.0.0/8
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo",
                     headers=[f"Host: loop.test:{up.port}"])
    assert r.http_code == 502, r
    assert r.body == b"bad gateway\n"
    assert up.connections == 0
    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    _check_error_record(recs[0], 502)
    err = recs[0]["error"]
    assert "denied by upstream_deny_cidrs" in err and "127.0.0.0/8" in err, err
    assert "127.0.0.1" in err, err


def test_default_deny_cidrs_block_loopback_via_tunnel(proxy_factory, upstream_factory, ca_cert):
    up = upstream_factory(host="127.0.0.1", tls=True, name="loop-upstream")
    proxy = proxy_factory.start(deny_cidrs=OMIT)
    r = clients.curl(f"https://loop.test:{up.port}/echo", proxy=proxy.tunnel_url, cacert=ca_cert)
    assert r.http_connect == 200, r   # the CONNECT check is policy only; the dial comes later
    assert r.http_code == 502, r
    assert r.body == b"bad gateway\n"
    assert up.connections == 0
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    _check_error_record(inner, 502)
    assert "denied by upstream_deny_cidrs" in inner["error"] and "127.0.0.0/8" in inner["error"]


def test_explicit_deny_list_replaces_defaults(proxy_factory, https_upstream, upstream_factory,
                                              ca_cert):
    # Explicit list: 127.0.0.2/32 denied, loopback 127.0.0.1 therefore allowed.
    loop_up = upstream_factory(host="127.0.0.1", tls=True, name="loop-upstream")
    proxy = proxy_factory.start(deny_cidrs=["127.0.0.2/32"])
    r = clients.curl(f"https://allowed.test:{https_upstream.port}/echo", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_code == 502, r
    r2 = clients.curl(f"https://loop.test:{loop_up.port}/echo", proxy=proxy.tunnel_url,
                      cacert=ca_cert)
    assert r2.http_code == 200, r2
    recs = proxy.wait_audit(4)
    errs = [x for x in recs if x["audit"]["action"] == "error"]
    assert len(errs) == 1 and "127.0.0.2/32" in errs[0]["error"], recs


def test_empty_deny_list_disables_defaults(proxy_factory, upstream_factory, ca_cert):
    loop_up = upstream_factory(host="127.0.0.1", tls=True, name="loop-upstream")
    proxy = proxy_factory.start(deny_cidrs=[])
    r = clients.curl(f"https://loop.test:{loop_up.port}/echo", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_code == 200, r


@pytest.mark.parametrize("via", ["tunnel", "https"])
def test_upstream_header_timeout_is_504(proxy_factory, https_upstream, ca_cert, via):
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}",
                                proxy_extra={"upstream_response_header_timeout": "1s"})
    if via == "tunnel":
        r = clients.curl(f"https://allowed.test:{port}/slow?s=3", proxy=proxy.tunnel_url,
                         cacert=ca_cert)
    else:
        r = clients.curl(f"https://allowed.test:{port}/slow?s=3",
                         resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert)
    assert r.http_code == 504, r
    assert float(r.info.get("time_total", 0)) < 2.9, "answered before the upstream did"
    recs = proxy.wait_audit(2 if via == "tunnel" else 1)
    [inner] = audit.inner_records(recs)
    _check_error_record(inner, 504)


def test_refused_upstream_is_502(proxy_factory, ca_cert):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    proxy = proxy_factory.start()
    r = clients.curl(f"https://allowed.test:{port}/echo", proxy=proxy.tunnel_url, cacert=ca_cert)
    assert r.http_connect == 200, r
    assert r.http_code == 502, r
    assert r.body == b"bad gateway\n"
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    _check_error_record(inner, 502)


def test_untrusted_upstream_certificate_is_502(proxy_factory, https_upstream, ca_cert):
    """Without upstream_ca_file the test upstream's certificate is not trusted."""
    proxy = proxy_factory.start(upstream_ca=False)
    r = clients.curl(f"https://allowed.test:{https_upstream.port}/echo", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_code == 502, r
    assert https_upstream.requests_for("/echo") == []
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    _check_error_record(inner, 502)


def test_unresolvable_upstream_is_502(proxy_factory, dns_server, ca_cert):
    proxy = proxy_factory.start(domains=["nxdomain.test"])
    r = clients.curl("https://nxdomain.test:443/", proxy=proxy.tunnel_url, cacert=ca_cert)
    assert r.http_connect == 200, r
    assert r.http_code == 502, r
    recs = proxy.wait_audit(2)
    [inner] = audit.inner_records(recs)
    _check_error_record(inner, 502)
    # The proxy asked the configured resolver (dns.upstream_resolver), not the system one.
    assert dns_server.queried("nxdomain.test"), dns_server.queries[-5:]


def test_upstream_resolver_is_used(proxy, https_upstream, dns_server, ca_cert):
    # allowed.test exists only in the test DNS server, so a 200 already shows it was used.
    before = len(dns_server.queried("allowed.test"))
    r = clients.curl(f"https://allowed.test:{https_upstream.port}/", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_code == 200, r
    assert len(dns_server.queried("allowed.test")) > before
