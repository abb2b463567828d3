"""Transparent interception with no DNS cooperation (issue 4, deliverable 4): the sandbox resolves
names itself and connects to the real upstream address; nftables REDIRECT on the proxy side sends
ports 80/443 to the proxy, which serves them as usual (SNI/Host) and, for a request that names no
host, uses the connection's original destination (SO_ORIGINAL_DST).

    netns iron-e2e-tps-<pid> (sandbox)          netns iron-e2e-tph-<pid> (proxy side)
    sbx0 10.213.9.2/30 --- veth --- host0 10.213.9.1/30: iron-proxy http :8080, https :8443
    default via 10.213.9.1                      nft: iif host0 tcp 443 -> redirect :8443, 80 -> :8080
                                                "internet": 10.213.10.1 (:443, :80), DNS 10.213.10.53

Every address exists only inside the two namespaces this module creates; both are removed by a
finalizer, also on failure. Skipped only where namespaces cannot be created.
"""
import os
import shutil
import uuid
from pathlib import Path

import pytest

from harness.configs import TestBed, make_config, OMIT
from harness.dns_server import TestDNSServer
from harness.netns import (NetNS, NetnsProxyProcess, local_addresses, netns_unavailable_reason,
                           veth_pair)
from harness.paths import BINARY
from harness.upstream import UpstreamServer

PROXY_IP = "10.213.9.1"
SANDBOX_IP = "10.213.9.2"
UPSTREAM_IP = "10.213.10.1"
RESOLVER_IP = "10.213.10.53"

REDIRECT_RULES = f"""
table ip iron_transparent_test {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "host0" ip daddr {UPSTREAM_IP} tcp dport 443 redirect to :8443
        iifname "host0" ip daddr {UPSTREAM_IP} tcp dport 80 redirect to :8080
    }}
}}
"""

RAW_REQUEST_NO_HOST = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10)
s.sendall(b"GET /echo?no-host HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode("latin-1"))
"""


class Env:
    pass


@pytest.fixture(scope="module")
def env(request, proxy_ca, upstream_pki, tmp_path_factory):
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces cannot be created here: {reason}")
    if not BINARY.exists():
        pytest.fail("build/iron-proxy not found: run scripts/build.sh", pytrace=False)
    if shutil.which("nft") is None:
        pytest.fail("`nft` is required (scripts/install-deps.sh installs it)", pytrace=False)
    pid = os.getpid()
    e = Env()
    e.host, e.sandbox = NetNS(f"iron-e2e-tph-{pid}"), NetNS(f"iron-e2e-tps-{pid}")
    e.proxy = e.https = e.http = e.resolver = None
    e.workdir = tmp_path_factory.mktemp("transparent")
    e.proxy_ca, e.upstream_ca = Path(proxy_ca[0]), Path(upstream_pki.ca_path)

    def cleanup():
        errors = []
        for obj in (e.proxy, e.https, e.http, e.resolver):
            if obj is not None:
                try:
                    obj.stop()
                except Exception as ex:
                    errors.append(repr(ex))
        for ns in (e.sandbox, e.host):
            try:
                ns.delete()
            except Exception as ex:
                errors.append(repr(ex))
        assert not errors and not e.host.exists() and not e.sandbox.exists(), errors

    request.addfinalizer(cleanup)
    for ns in (e.host, e.sandbox):
        ns.create()
        ns.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6"])
    veth_pair(e.host, "host0", f"{PROXY_IP}/30", e.sandbox, "sbx0", f"{SANDBOX_IP}/30")
    local_addresses(e.host, f"{UPSTREAM_IP}/32", f"{RESOLVER_IP}/32")
    e.sandbox.ip("route", "add", "default", "via", PROXY_IP)

    with e.host.entered():
        e.https = UpstreamServer(UPSTREAM_IP, 443, upstream_pki.server_context(), "tp-https-upstream").start()
        e.http = UpstreamServer(UPSTREAM_IP, 80, None, "tp-http-upstream").start()
        e.resolver = TestDNSServer(records={"allowed.test": [UPSTREAM_IP], "denied.test": [UPSTREAM_IP]},
                                   host=RESOLVER_IP).start()
    bed = TestBed(workdir=e.workdir, dns_addr=e.resolver.addr, ca_cert=e.proxy_ca, ca_key=Path(proxy_ca[1]),
                  upstream_ca=e.upstream_ca)
    cfg = make_config(bed, name="tp-proxy", http_listen=f"{PROXY_IP}:8080", https_listen=f"{PROXY_IP}:8443",
                      tunnel_listen=OMIT, domains=("allowed.test",), cidrs=(f"{UPSTREAM_IP}/32",),
                      proxy_extra={"transparent": True})
    e.proxy = NetnsProxyProcess(e.host, e.workdir, cfg, name="tp-proxy")
    e.proxy.start()
    e.host.nft(REDIRECT_RULES)
    return e


@pytest.fixture
def tp(env, request):
    request.node._iron_proxies = [env.proxy]
    assert env.proxy.alive(), env.proxy.stderr_text()[-3000:]
    return env


def _curl(e, url, resolve, cacert=None):
    args = ["curl", "-q", "-sS", "--noproxy", "*", "--max-time", "15", "--resolve", resolve,
            "-o", "-", "-w", "\n%{http_code}"]
    if cacert:
        args += ["--cacert", str(cacert)]
    cp = e.sandbox.run(args + [url], check=False, timeout=30)
    body, _, code = cp.stdout.rpartition("\n")
    return cp.returncode, int(code or 0), body, cp.stderr


def _records(e, path):
    return [r for r in e.proxy.audit_records() if r["audit"]["path"] == path]


def test_redirected_https_is_intercepted(tp):
    path = f"/tp-{uuid.uuid4().hex[:10]}"
    # The client dials the upstream's real address; only the proxy's CA makes TLS succeed, so
    # a 200 proves the REDIRECT went through the MITM.
    rc, code, body, err = _curl(tp, f"https://allowed.test{path}", f"allowed.test:443:{UPSTREAM_IP}",
                                cacert=tp.proxy_ca)
    assert rc == 0 and code == 200, (rc, code, err)
    assert "tp-https-upstream" in body
    [rec] = tp.proxy.wait_audit(1, predicate=lambda r: r["audit"]["path"] == path) or [None]
    assert rec and rec["audit"]["action"] == "allow", _records(tp, path)
    assert rec["audit"]["remote_addr"].startswith(SANDBOX_IP + ":")


def test_redirected_denied_host_gets_403(tp):
    path = f"/tp-{uuid.uuid4().hex[:10]}"
    rc, code, body, err = _curl(tp, f"https://denied.test{path}", f"denied.test:443:{UPSTREAM_IP}",
                                cacert=tp.proxy_ca)
    assert code == 403, (rc, code, err)
    assert not tp.https.requests_for(path)


def test_request_without_host_goes_to_original_destination(tp):
    cp = tp.sandbox.run(["/usr/bin/python3", "-c", RAW_REQUEST_NO_HOST, UPSTREAM_IP], check=False, timeout=30)
    assert cp.stdout.startswith("HTTP/1.1 200"), (cp.stdout[:300], cp.stderr[-500:])
    assert "tp-http-upstream" in cp.stdout
    recs = tp.proxy.wait_audit(1, predicate=lambda r: r["audit"]["host"] == f"{UPSTREAM_IP}:80")
    assert recs and recs[-1]["audit"]["action"] == "allow", tp.proxy.audit_records()
