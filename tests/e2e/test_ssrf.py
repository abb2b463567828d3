"""SSRF through addresses that do not look like loopback or metadata but reach them: the
unspecified addresses (a connect to 0.0.0.0 or :: lands on this host) and IPv6 forms that carry an
IPv4 address (NAT64, 6to4, Teredo). With an allowlist admitting everything (`*`), the deny list
alone must stop them: 502 before any dial, the denial audited with what the address embeds.

The embedded-IPv4 targets are refused before any packet is sent; against a binary without the
check they would be dialed (run such a comparison in an empty network namespace, e.g.
`unshare -rn`, so those packets have nowhere to go)."""
import socket

import pytest

from harness import audit, clients, yamlgen
from harness.configs import OMIT
from harness.proxy import run_binary
from harness.upstream import UpstreamServer

# Bounded even against a proxy that dials what it should not: short dial and header deadlines.
FAST_FAIL = {"upstream_connect_timeout": "2s", "upstream_response_header_timeout": "3s"}
CURL_MAX = 10


class _V6Upstream(UpstreamServer):
    address_family = socket.AF_INET6


@pytest.fixture
def v4_upstream(upstream_factory):
    """Plain HTTP on 127.0.0.1: where 0.0.0.0 lands."""
    return upstream_factory(host="127.0.0.1", tls=False, name="loopback-upstream")


@pytest.fixture
def v6_upstream():
    """Plain HTTP on ::1: where :: lands."""
    try:
        srv = _V6Upstream(host="::1", port=0, tls=None, name="v6-loopback-upstream")
    except OSError as e:
        pytest.skip(f"no IPv6 loopback: {e}")
    srv.start()
    yield srv
    srv.stop()


def _start(proxy_factory, deny_cidrs=OMIT, **kw):
    return proxy_factory.start(domains=["*"], deny_cidrs=deny_cidrs, proxy_extra=FAST_FAIL, **kw)


def _assert_denied(proxy, r, expect_in_error, n_records=1):
    assert r.http_code == 502, r
    assert r.body == b"bad gateway\n", r
    recs = proxy.wait_audit(n_records)
    inner = audit.inner_records(recs)
    assert len(inner) == 1, recs
    rec = inner[0]
    a = audit.check_shape(rec)
    assert a["action"] == "error" and a["status_code"] == 502, rec
    err = rec.get("error", "")
    assert "denied by upstream_deny_cidrs: " in err, rec
    assert expect_in_error in err, rec
    return rec


# Host (as written in the URL), the upstream it would reach, and what the audit error must say.
UNSPECIFIED = [
    ("0.0.0.0", "v4", "0.0.0.0 in 0.0.0.0/8"),
    ("zero.test", "v4", "0.0.0.0 in 0.0.0.0/8"),        # test DNS: zero.test A 0.0.0.0
    ("[::]", "v6", ":: in ::/128"),
]


def _landing(request, lands_on):
    return request.getfixturevalue("v4_upstream" if lands_on == "v4" else "v6_upstream")


@pytest.mark.parametrize("host,lands_on,expect", UNSPECIFIED, ids=["0.0.0.0", "name-to-0.0.0.0", "[::]"])
def test_unspecified_address_is_denied_by_default(request, proxy_factory, host, lands_on, expect):
    up = _landing(request, lands_on)
    proxy = _start(proxy_factory)
    r = clients.curl(f"http://{host}:{up.port}/echo", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     extra=["-g"], max_time=CURL_MAX)
    _assert_denied(proxy, r, expect)
    assert up.connections == 0


def test_unspecified_address_is_denied_through_the_tunnel(proxy_factory, v4_upstream):
    proxy = _start(proxy_factory)
    r = clients.curl(f"http://0.0.0.0:{v4_upstream.port}/echo", proxy=proxy.tunnel_url,
                     extra=["--proxytunnel"], max_time=CURL_MAX)
    assert r.http_connect == 200, r  # the CONNECT check is policy only; the dial comes later
    _assert_denied(proxy, r, "0.0.0.0 in 0.0.0.0/8", n_records=2)
    assert v4_upstream.connections == 0


@pytest.mark.parametrize("host,lands_on", [("0.0.0.0", "v4"), ("zero.test", "v4"), ("[::]", "v6")],
                         ids=["0.0.0.0", "name-to-0.0.0.0", "[::]"])
def test_explicit_loopback_list_still_denies_unspecified(request, proxy_factory, host, lands_on):
    # The list names 127.0.0.0/8 only: 0.0.0.0 and :: are still this host, so still denied.
    up = _landing(request, lands_on)
    proxy = _start(proxy_factory, deny_cidrs=["127.0.0.0/8"])
    r = clients.curl(f"http://{host}:{up.port}/echo", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     extra=["-g"], max_time=CURL_MAX)
    _assert_denied(proxy, r, "(this host, as 127.0.0.1) in 127.0.0.0/8")
    assert up.connections == 0


# IPv6 forms carrying a denied IPv4, and the text the audit error must contain.
EMBEDDED = [
    ("64:ff9b::7f00:2", "64:ff9b::7f00:2 (embeds 127.0.0.2) in 127.0.0.0/8"),                     # NAT64
    ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe (embeds 169.254.169.254) in 169.254.169.254/32"),  # NAT64
    ("64:ff9b:1:a9fe:a9:fe00::", "(embeds 169.254.169.254) in 169.254.169.254/32"),  # local-use NAT64 /48
    ("2002:7f00:1::", "2002:7f00:1:: (embeds 127.0.0.1) in 127.0.0.0/8"),                         # 6to4
    ("2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1 (embeds 169.254.169.254) in 169.254.169.254/32"),    # 6to4
    ("2001:0:a9fe:a9fe::1", "(embeds 169.254.169.254) in 169.254.169.254/32"),       # Teredo server
    ("2001:0:102:304::80ff:fffe", "(embeds 127.0.0.1) in 127.0.0.0/8"),              # Teredo client
]


@pytest.mark.parametrize("ip,expect", EMBEDDED, ids=[e[0] for e in EMBEDDED])
def test_embedded_ipv4_is_denied_before_dialing(proxy_factory, ip, expect):
    proxy = _start(proxy_factory)
    r = clients.curl(f"http://[{ip}]:8080/", proxy=f"http://127.0.0.1:{proxy.http_port}", extra=["-g"],
                     max_time=CURL_MAX)
    _assert_denied(proxy, r, expect)


def test_embedded_ipv4_is_checked_against_an_explicit_list(proxy_factory):
    # An explicit list replaces the defaults; the decoding still applies to what it names.
    proxy = _start(proxy_factory, deny_cidrs=["169.254.169.254/32"])
    r = clients.curl("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     extra=["-g"], max_time=CURL_MAX)
    _assert_denied(proxy, r, "64:ff9b::a9fe:a9fe (embeds 169.254.169.254) in 169.254.169.254/32")


def test_sni_only_relay_denies_a_name_resolving_to_0000(proxy_factory, upstream_pki):
    # sni-only dials SNI:443; zero.test => 0.0.0.0, which would land on this host's port 443.
    proxy = _start(proxy_factory, tls_extra={"mode": "sni-only"})
    port = proxy.https_port
    r = clients.curl(f"https://zero.test:{port}/", resolve=f"zero.test:{port}:127.0.0.1",
                     cacert=upstream_pki.ca_path, max_time=CURL_MAX)
    assert r.exit_code != 0, r
    [rec] = proxy.wait_audit(1)
    a = audit.check_shape(rec)
    assert a["mode"] == "sni-only" and a["action"] == "error" and a["status_code"] == 502, rec
    assert "denied by upstream_deny_cidrs: 0.0.0.0 in 0.0.0.0/8" in rec.get("error", ""), rec


def test_deny_cidrs_from_the_environment_replace_the_file(proxy_factory, http_upstream):
    """IRON_PROXY_UPSTREAM_DENY_CIDRS (comma list, entries trimmed) replaces the YAML list: the
    file's list lets 127.0.0.2 through, the variable denies it."""
    proxy = _start(proxy_factory, deny_cidrs=["169.254.169.254/32"],
                   env={"IRON_PROXY_UPSTREAM_DENY_CIDRS": " 10.0.0.0/8 , 127.0.0.2/32"})
    r = clients.curl(f"http://allowed.test:{http_upstream.port}/echo", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     max_time=CURL_MAX)
    _assert_denied(proxy, r, "127.0.0.2 in 127.0.0.2/32")
    assert http_upstream.connections == 0


@pytest.mark.parametrize("value,message", [
    ("10.0.0.0/8,", "IRON_PROXY_UPSTREAM_DENY_CIDRS: empty CIDR entry"),
    ("10.0.0.0/8, ,fd00::/8", "IRON_PROXY_UPSTREAM_DENY_CIDRS: empty CIDR entry"),
    ("10.0.0.0/8,1.2.3.4", 'IRON_PROXY_UPSTREAM_DENY_CIDRS: invalid CIDR "1.2.3.4": must be CIDR notation'),
])
def test_bad_deny_cidrs_in_the_environment_stop_the_start(bed, proxy_factory, value, message):
    cfg = proxy_factory.config(deny_cidrs=["169.254.169.254/32"])
    path = bed.workdir / "env-cidrs.yaml"
    path.write_text(yamlgen.dump(cfg))
    cp = run_binary(["-check", "-config", str(path)], env={"IRON_PROXY_UPSTREAM_DENY_CIDRS": value})
    assert cp.returncode == 1, cp
    assert cp.stderr.strip().startswith("error: " + message), cp.stderr
    p = proxy_factory.start(config=cfg, wait_ready=False, env={"IRON_PROXY_UPSTREAM_DENY_CIDRS": value})
    assert p.proc.wait(timeout=10) == 1
    assert message in p.stderr_text()


@pytest.mark.parametrize("ip,prefix", [
    ("169.254.169.254", "169.254.169.254/32"),
    ("fd00:ec2::254", "fd00:ec2::254/128"),    # AWS IMDS over IPv6
    ("fd20:ce::254", "fd20:ce::254/128"),      # GCP metadata over IPv6
])
def test_cloud_metadata_is_denied_by_default(proxy_factory, ip, prefix):
    proxy = _start(proxy_factory)
    host = f"[{ip}]" if ":" in ip else ip
    r = clients.curl(f"http://{host}/computeMetadata/v1/", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     extra=["-g"], max_time=CURL_MAX)
    _assert_denied(proxy, r, f"{ip} in {prefix}")
