"""The sandbox routing story in network namespaces (issue 4, acceptance item 1; seeds 000 "Standalone
Host" and 001 "Routing traffic to the proxy": DNS-based routing + nftables lock-down).

Topology (every address below exists only inside the two namespaces this module creates):

    netns iron-e2e-sbx-<pid> ("sandbox")       netns iron-e2e-host-<pid> ("proxy side")
    +-------------------------------------+    +------------------------------------------------+
    | resolv.conf: nameserver 10.213.7.1  |    | iron-proxy: dns   10.213.7.1:53 (UDP + TCP)    |
    | default via 10.213.7.1              |    |             http  10.213.7.1:80                |
    | sbx0 10.213.7.2/30 <----- veth -----+----+-> host0 10.213.7.1/30  https 10.213.7.1:443  |
    | nftables: examples/nftables/        |    | "internet" (dummy up0, or lo without CONFIG_   |
    |   sandbox.nft (egress only to       |    |   DUMMY): 10.213.8.1 upstream :443 and :80,    |
    |   10.213.7.1 53/80/443; drop+count) |    |   10.213.8.53 test DNS = upstream_resolver     |
    +-------------------------------------+    +------------------------------------------------+

Inside the sandbox, plain `curl https://allowed.test/ --cacert proxy-ca.crt` (no proxy flags)
resolves allowed.test through the proxy's DNS server to 10.213.7.1 and is served via the MITM
listener; denied.test gets 403; a hardcoded upstream IP (`--resolve ...:10.213.8.1`) and a query to
the outside resolver (10.213.8.53) are dropped by nftables (each with a control showing they work
*before* the rules are loaded, and the drop counter rising after); every request that reached the
proxy has an audit record with the sandbox's address, and nothing else does.

The nftables rules are examples/nftables/sandbox.nft itself, so the example is what is proven; the
last test also checks the other examples (every YAML parses, every proxy config passes -check,
every nftables file passes `nft -c` in a throwaway namespace).

The namespace tests skip only when namespaces cannot be created (not root, `ip netns add` refused). All
namespaces, the /etc/netns/<name> directories and every process started in them are removed by
finalizers, also on failure.
"""
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import audit
from harness.configs import TestBed, make_config, OMIT
from harness.dns_server import TestDNSServer
from harness.netns import (NetNS, NetnsProxyProcess, local_addresses, netns_unavailable_reason,
                           remove_stale, veth_pair)
from harness.paths import BINARY, REPO_ROOT
from harness.upstream import UpstreamServer

PROXY_IP = "10.213.7.1"        # proxy side of the veth; the proxy's listeners and DNS
SANDBOX_IP = "10.213.7.2"      # sandbox side of the veth
UPSTREAM_IP = "10.213.8.1"     # the "internet": upstream HTTPS :443 and HTTP :80
RESOLVER_IP = "10.213.8.53"    # the "outside" resolver (the proxy's upstream_resolver)
BYPASS_CONNECT_TIMEOUT = 2     # seconds; nftables drops silently, so blocked attempts time out

# The sandbox's lock-down is examples/nftables/sandbox.nft itself (so the example is what is
# proven), with its PROXY_IP define pointed at this topology's proxy.
NFT_EXAMPLE = REPO_ROOT / "examples" / "nftables" / "sandbox.nft"


def sandbox_ruleset():
    text = NFT_EXAMPLE.read_text()
    out, n = re.subn(r"(?m)^define PROXY_IP = .*$", f"define PROXY_IP = {PROXY_IP}", text)
    assert n == 1, f"{NFT_EXAMPLE} must have exactly one `define PROXY_IP = ...` line"
    return out


# --- the topology -----------------------------------------------------------------------------------

@dataclass
class Topology:
    host: NetNS
    sandbox: NetNS
    workdir: Path
    proxy_ca: Path
    upstream_ca: Path
    https_upstream: UpstreamServer = None
    http_upstream: UpstreamServer = None
    resolver: TestDNSServer = None
    proxy: NetnsProxyProcess = None
    nft_loaded: bool = False
    controls: dict = field(default_factory=dict)

    # curl inside the sandbox: no proxy flags, no proxy env vars, no ~/.curlrc.
    def curl(self, url, *, cacert=None, resolve=None, connect_timeout=5, max_time=15):
        args = ["curl", "-q", "-sS", "--noproxy", "*", "--connect-timeout", str(connect_timeout),
                "--max-time", str(max_time), "-o", "-", "-w", "\n%{json}"]
        if cacert:
            args += ["--cacert", str(cacert)]
        if resolve:
            args += ["--resolve", resolve]
        args.append(url)
        cp = self.sandbox.run(args, check=False, timeout=max_time + 10)
        body, _, info = cp.stdout.rpartition("\n")
        try:
            info = json.loads(info)
        except ValueError:
            info = {}
        return CurlOutcome(cp.returncode, int(info.get("http_code") or 0), body, cp.stderr, info)

    def dig(self, *args, server=None, port=53):
        cmd = ["dig", "+time=2", "+tries=1", "+short"]
        if server:
            cmd += [f"@{server}", "-p", str(port)]
        cp = self.sandbox.run([*cmd, *args], check=False, timeout=15)
        return cp

    def drops(self):
        cp = self.sandbox.run(["nft", "list", "counter", "inet", "iron_sandbox", "dropped"])
        for line in cp.stdout.splitlines():
            parts = line.split()
            if "packets" in parts:
                return int(parts[parts.index("packets") + 1])
        raise AssertionError(f"no packet count in: {cp.stdout}")


@dataclass
class CurlOutcome:
    exit_code: int
    http_code: int
    body: str
    stderr: str
    info: dict

    def __str__(self):
        return (f"curl exit={self.exit_code} http_code={self.http_code} "
                f"stderr={self.stderr.strip()[-400:]!r} body={self.body[:300]!r}")


def _probe(tag):
    return f"/probe/{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def topology(request, proxy_ca, upstream_pki, tmp_path_factory):
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces cannot be created here: {reason}")
    if not BINARY.exists():
        pytest.fail("build/iron-proxy not found: run scripts/build.sh", pytrace=False)
    for tool in ("nft", "curl", "dig"):
        if shutil.which(tool) is None:
            pytest.fail(f"`{tool}` is required for the sandbox test (scripts/install-deps.sh installs it)",
                        pytrace=False)
    remove_stale()

    pid = os.getpid()
    host = NetNS(f"iron-e2e-host-{pid}")
    sandbox = NetNS(f"iron-e2e-sbx-{pid}")
    topo = Topology(host=host, sandbox=sandbox, workdir=tmp_path_factory.mktemp("netns"),
                    proxy_ca=Path(proxy_ca[0]), upstream_ca=Path(upstream_pki.ca_path))

    def cleanup():
        # Everything we started, then the namespaces (which takes the veth and up0 with them).
        errors = []
        for what in ("proxy", "https_upstream", "http_upstream", "resolver"):
            obj = getattr(topo, what)
            if obj is None:
                continue
            try:
                obj.stop()
            except Exception as e:  # keep cleaning up
                errors.append(f"{what}: {e!r}")
        for ns in (sandbox, host):
            try:
                ns.delete()
            except Exception as e:
                errors.append(f"{ns}: {e!r}")
        leftovers = [ns.name for ns in (sandbox, host) if ns.exists() or ns.etc_dir.exists()]
        assert not errors and not leftovers, f"cleanup problems: {errors}, left: {leftovers}"

    request.addfinalizer(cleanup)

    # Namespaces, IPv6 off (so nothing but our IPv4 traffic is counted), veth, "internet" addresses.
    for ns in (host, sandbox):
        ns.create()
        ns.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && "
                            "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"])
    veth_pair(host, "host0", f"{PROXY_IP}/30", sandbox, "sbx0", f"{SANDBOX_IP}/30")
    local_addresses(host, f"{UPSTREAM_IP}/32", f"{RESOLVER_IP}/32")
    # The sandbox can route to the "internet" addresses (they are local to the proxy side), so only
    # nftables stands between it and them: the controls below prove that.
    sandbox.ip("route", "add", "default", "via", PROXY_IP)
    topo.resolv_conf = sandbox.write_resolv_conf(PROXY_IP)

    # Upstreams and the outside resolver, in this process but with sockets in the host namespace.
    with host.entered():
        topo.https_upstream = UpstreamServer(UPSTREAM_IP, 443, upstream_pki.server_context(),
                                             "netns-https-upstream").start()
        topo.http_upstream = UpstreamServer(UPSTREAM_IP, 80, None, "netns-http-upstream").start()
        topo.resolver = TestDNSServer(
            records={"allowed.test": [UPSTREAM_IP], "denied.test": [UPSTREAM_IP]},
            host=RESOLVER_IP).start()

    # The proxy: DNS + HTTP + HTTPS on the veth address, upstream names through the test resolver.
    bed = TestBed(workdir=topo.workdir, dns_addr=topo.resolver.addr, ca_cert=Path(proxy_ca[0]),
                  ca_key=Path(proxy_ca[1]), upstream_ca=topo.upstream_ca)
    cfg = make_config(
        bed, name="netns-proxy", http_listen=f"{PROXY_IP}:80", https_listen=f"{PROXY_IP}:443",
        tunnel_listen=OMIT, domains=("allowed.test",),
        extra={"dns": {"enabled": True, "listen": f"{PROXY_IP}:53", "proxy_ip": PROXY_IP,
                       "upstream_resolver": topo.resolver.addr}})
    topo.proxy = NetnsProxyProcess(host, topo.workdir, cfg, name="netns-proxy")
    topo.proxy.start()
    assert topo.proxy.wait_stderr("dns server starting", timeout=5), topo.proxy.stderr_text()[-2000:]
    dns_lines = [r for r in topo.proxy.log_records() if r.get("msg") == "dns server starting"]
    assert dns_lines and dns_lines[0].get("addr") == f"{PROXY_IP}:53", dns_lines

    # Controls, before the lock-down: the bypass routes really work without nftables.
    direct = topo.curl("https://allowed.test/control", cacert=topo.upstream_ca,
                       resolve=f"allowed.test:443:{UPSTREAM_IP}")
    assert direct.exit_code == 0 and direct.http_code == 200, f"control (direct upstream): {direct}"
    assert "netns-https-upstream" in direct.body, direct
    outside = topo.dig("allowed.test", "A", server=RESOLVER_IP, port=topo.resolver.port)
    assert outside.returncode == 0 and _answers(outside.stdout) == [UPSTREAM_IP], \
        f"control (outside resolver): {outside.stdout!r} {outside.stderr!r}"
    assert topo.proxy.audit_records() == [], "the controls must not have touched the proxy"
    topo.controls = {"direct": direct, "outside": outside}

    # The lock-down.
    sandbox.nft(sandbox_ruleset())
    topo.nft_loaded = True
    assert topo.drops() == 0
    return topo


@pytest.fixture
def topo(topology, request):
    # Let conftest attach the proxy's stderr tail to a failing test's report.
    request.node._iron_proxies = [topology.proxy]
    assert topology.proxy.alive(), "iron-proxy died:\n" + topology.proxy.stderr_text()[-3000:]
    return topology


def _records_for(topo, path, n=1):
    return topo.proxy.wait_audit(n, predicate=lambda r: r["audit"]["path"] == path, timeout=5,
                                 settle=0.2)


# --- the tests -------------------------------------------------------------------------------------

def test_sandbox_resolver_points_at_proxy(topo):
    """The sandbox's /etc/resolv.conf (bind-mounted by ip netns exec) names the proxy, and every A
    lookup — known, unknown, allowed or not — answers the proxy's IP; AAAA is empty."""
    cp = topo.sandbox.run(["cat", "/etc/resolv.conf"])
    assert f"nameserver {PROXY_IP}" in cp.stdout, cp.stdout
    for name in ("allowed.test", "denied.test", "anything.example.com"):
        r = topo.dig(name, "A")
        assert r.returncode == 0 and _answers(r.stdout) == [PROXY_IP], (name, r.stdout, r.stderr)
    r = topo.dig("allowed.test", "AAAA")
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout
    # glibc (what curl uses) agrees.
    cp = topo.sandbox.run(["getent", "ahostsv4", "allowed.test"], check=False)
    assert cp.returncode == 0 and cp.stdout.split()[0] == PROXY_IP, cp.stdout + cp.stderr
    # Over TCP too (allowed by the nftables rules: tcp 53 to the proxy).
    r = topo.dig("+tcp", "denied.test", "A")
    assert r.returncode == 0 and _answers(r.stdout) == [PROXY_IP], (r.stdout, r.stderr)


def test_allowed_https_via_dns_routing(topo):
    """Plain curl with only --cacert: DNS routes it to the MITM listener, which forwards it."""
    path = _probe("allowed-https")
    r = topo.curl(f"https://allowed.test{path}", cacert=topo.proxy_ca)
    assert r.exit_code == 0 and r.http_code == 200, r
    assert r.body == "hello from netns-https-upstream\n", r
    assert r.info.get("remote_ip") == PROXY_IP, r.info
    assert topo.https_upstream.requests_for(path), "the upstream never saw the request"

    [rec] = _records_for(topo, path)
    a = audit.check_shape(rec)
    assert a["host"] in ("allowed.test", "allowed.test:443"), a
    assert a["sni"] == "allowed.test" and a["mode"] == "mitm", a
    assert a["action"] == "allow" and a["status_code"] == 200, a
    assert a["remote_addr"].startswith(f"{SANDBOX_IP}:"), a


def test_allowed_plain_http_via_dns_routing(topo):
    path = _probe("allowed-http")
    r = topo.curl(f"http://allowed.test{path}")
    assert r.exit_code == 0 and r.http_code == 200, r
    assert r.body == "hello from netns-http-upstream\n", r
    [rec] = _records_for(topo, path)
    a = audit.check_shape(rec)
    assert a["action"] == "allow" and a["status_code"] == 200, a
    assert a["remote_addr"].startswith(f"{SANDBOX_IP}:"), a


def test_denied_https_gets_403(topo):
    path = _probe("denied-https")
    before = topo.https_upstream.connections
    r = topo.curl(f"https://denied.test{path}", cacert=topo.proxy_ca)
    assert r.exit_code == 0 and r.http_code == 403, r
    assert not topo.https_upstream.requests_for(path)
    assert topo.https_upstream.connections == before, "a denied request must not reach the upstream"

    [rec] = _records_for(topo, path)
    a = audit.check_shape(rec)
    assert a["sni"] == "denied.test", a
    assert a["action"] == "reject" and a["status_code"] == 403, a
    assert rec.get("rejected_by") == "allowlist", rec
    assert a["remote_addr"].startswith(f"{SANDBOX_IP}:"), a


def test_denied_plain_http_gets_403(topo):
    path = _probe("denied-http")
    r = topo.curl(f"http://denied.test{path}")
    assert r.exit_code == 0 and r.http_code == 403, r
    assert not topo.http_upstream.requests_for(path)
    [rec] = _records_for(topo, path)
    a = audit.check_shape(rec)
    assert a["action"] == "reject" and a["status_code"] == 403, a
    assert a["remote_addr"].startswith(f"{SANDBOX_IP}:"), a


def test_hardcoded_upstream_ip_is_blocked(topo):
    """The same request that succeeded as a control before the lock-down now times out: nftables
    drops the SYN (counter rises), the upstream sees no connection, the proxy sees nothing."""
    assert topo.controls["direct"].http_code == 200
    for scheme, port, up in (("https", 443, topo.https_upstream), ("http", 80, topo.http_upstream)):
        path = _probe(f"bypass-{scheme}")
        drops, conns = topo.drops(), up.connections
        r = topo.curl(f"{scheme}://allowed.test{path}", cacert=topo.upstream_ca,
                      resolve=f"allowed.test:{port}:{UPSTREAM_IP}",
                      connect_timeout=BYPASS_CONNECT_TIMEOUT, max_time=BYPASS_CONNECT_TIMEOUT + 2)
        assert r.exit_code in (7, 28) and r.http_code == 0, f"{scheme} bypass was not blocked: {r}"
        assert topo.drops() > drops, "nftables' drop counter did not move"
        assert up.connections == conns and not up.requests_for(path)
        assert not [x for x in topo.proxy.audit_records() if x["audit"]["path"] == path]
    # A literal IP in the URL is no better.
    r = topo.curl(f"https://{UPSTREAM_IP}/", cacert=topo.upstream_ca,
                  connect_timeout=BYPASS_CONNECT_TIMEOUT, max_time=BYPASS_CONNECT_TIMEOUT + 2)
    assert r.exit_code in (7, 28), r


def _answers(dig_stdout):
    """The +short answer lines (dig prints ";; ..." diagnostics, e.g. timeouts, on stdout too)."""
    return [ln.strip() for ln in dig_stdout.splitlines() if ln.strip() and not ln.startswith(";")]


def test_outside_resolver_is_blocked(topo):
    """Asking the real resolver directly (UDP and TCP), or port 53 of the upstream's address, fails:
    dropped by nftables. So does an unlisted port on the proxy's own address."""
    assert _answers(topo.controls["outside"].stdout) == [UPSTREAM_IP]
    attempts = [((), RESOLVER_IP, topo.resolver.port), (("+tcp",), RESOLVER_IP, topo.resolver.port),
                ((), UPSTREAM_IP, 53)]
    for extra, server, port in attempts:
        drops = topo.drops()
        r = topo.dig(*extra, "allowed.test", "A", server=server, port=port)
        assert _answers(r.stdout) == [], (extra, server, r.returncode, r.stdout, r.stderr)
        assert "timed out" in r.stdout or "no servers could be reached" in r.stdout, r.stdout
        assert topo.drops() > drops, f"nftables' drop counter did not move ({extra} @{server})"
    drops = topo.drops()
    r = topo.curl(f"http://{PROXY_IP}:8080/", connect_timeout=BYPASS_CONNECT_TIMEOUT,
                  max_time=BYPASS_CONNECT_TIMEOUT + 2)
    assert r.exit_code in (7, 28) and topo.drops() > drops, r


def test_every_attempt_that_reached_the_proxy_is_audited(topo):
    """A mixed batch: each of the four proxy-bound requests has exactly one audit record (with the
    sandbox's address); the two bypass attempts have none. No record comes from anywhere else."""
    reached = {
        "https-allow": (_probe("batch-https-allow"), "https://allowed.test", 200),
        "https-deny": (_probe("batch-https-deny"), "https://denied.test", 403),
        "http-allow": (_probe("batch-http-allow"), "http://allowed.test", 200),
        "http-deny": (_probe("batch-http-deny"), "http://denied.test", 403),
    }
    for key, (path, base, want) in reached.items():
        r = topo.curl(base + path, cacert=topo.proxy_ca)
        assert r.http_code == want, (key, r)
    bypass = [_probe("batch-bypass-https"), _probe("batch-bypass-http")]
    topo.curl(f"https://allowed.test{bypass[0]}", cacert=topo.upstream_ca,
              resolve=f"allowed.test:443:{UPSTREAM_IP}", connect_timeout=BYPASS_CONNECT_TIMEOUT,
              max_time=BYPASS_CONNECT_TIMEOUT + 2)
    topo.curl(f"http://allowed.test{bypass[1]}", resolve=f"allowed.test:80:{UPSTREAM_IP}",
              connect_timeout=BYPASS_CONNECT_TIMEOUT, max_time=BYPASS_CONNECT_TIMEOUT + 2)

    paths = {p for p, _, _ in reached.values()}
    recs = topo.proxy.wait_audit(len(paths), predicate=lambda r: r["audit"]["path"] in paths,
                                 timeout=5, settle=0.3)
    by_path = {}
    for rec in recs:
        by_path.setdefault(rec["audit"]["path"], []).append(rec)
    for key, (path, _, want) in reached.items():
        got = by_path.get(path, [])
        assert len(got) == 1, (key, got)
        a = audit.check_shape(got[0])
        assert a["status_code"] == want and a["action"] == ("allow" if want == 200 else "reject"), a
    all_recs = topo.proxy.audit_records()
    for rec in all_recs:
        audit.check_shape(rec)
        assert rec["audit"]["remote_addr"].startswith(f"{SANDBOX_IP}:"), rec
        assert rec["audit"]["path"] not in bypass, rec
    for p in bypass:
        assert not topo.https_upstream.requests_for(p) and not topo.http_upstream.requests_for(p)


def test_proxy_side_is_unaffected(topo):
    """The lock-down is the sandbox's only: the proxy still reaches the upstreams (previous tests),
    and the resolver answered the proxy's lookups of the upstream names."""
    assert topo.resolver.queried("allowed.test"), topo.resolver.queries
    assert topo.proxy.alive()


# --- the examples this test stands in for ----------------------------------------------------------

EXAMPLES = REPO_ROOT / "examples"


def _proxy_configs(yaml):
    """(label, text) of every proxy config under examples/: the plain files and the one inside the
    Kubernetes ConfigMap."""
    out = [("docker-compose/proxy.yaml", (EXAMPLES / "docker-compose" / "proxy.yaml").read_text())]
    for doc in yaml.safe_load_all((EXAMPLES / "kubernetes" / "sidecar.yaml").read_text()):
        if doc and doc.get("kind") == "ConfigMap" and "proxy.yaml" in doc.get("data", {}):
            out.append(("kubernetes/sidecar.yaml ConfigMap proxy.yaml", doc["data"]["proxy.yaml"]))
    assert len(out) == 2, out
    return out


def test_examples_are_valid(iron_binary, tmp_path):
    """Every YAML under examples/ parses; every proxy config passes `iron-proxy -check` (with its
    /certs/ CA paths pointed at a fresh CA); every nftables file passes `nft -c`."""
    yaml = pytest.importorskip("yaml", reason="python3-yaml is needed to parse the examples")
    files = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml"))
    assert len(files) >= 4, files
    for p in files:
        docs = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        assert docs, f"{p} has no YAML document"

    from harness.proxy import run_binary
    cp = run_binary(["generate-ca", "-outdir", str(tmp_path / "ca"), "-alg", "ecdsa-p256"])
    assert cp.returncode == 0, cp
    for label, text in _proxy_configs(yaml):
        assert '"/certs/ca.crt"' in text and '"/certs/ca.key"' in text, label
        cfg = tmp_path / (re.sub(r"[^a-z0-9]+", "-", label.lower()) + ".yaml")
        cfg.write_text(text.replace('"/certs/', f'"{tmp_path / "ca"}/'))
        cp = run_binary(["-check", "-config", str(cfg)], cwd=str(tmp_path))
        assert cp.returncode == 0 and cp.stdout.startswith("config OK"), (label, cp.stdout, cp.stderr)

    # nft -c talks to the kernel: do it in a namespace of our own so the host's ruleset is untouched.
    reason = netns_unavailable_reason()
    if reason or shutil.which("nft") is None:
        pytest.skip(f"nftables files not checked: {reason or 'nft not installed'}")
    k8s_nft = [doc["data"]["pod-egress.nft"]
               for doc in yaml.safe_load_all((EXAMPLES / "kubernetes" / "sidecar.yaml").read_text())
               if doc and doc.get("kind") == "ConfigMap" and "pod-egress.nft" in doc.get("data", {})]
    rulesets = [("nftables/nftables.conf", (EXAMPLES / "nftables" / "nftables.conf").read_text()),
                ("nftables/sandbox.nft", NFT_EXAMPLE.read_text()),
                ("kubernetes pod-egress.nft", k8s_nft[0] if k8s_nft else "")]
    ns = NetNS(f"iron-e2e-nftchk-{os.getpid()}")
    try:
        ns.create()
        for label, text in rulesets:
            assert text.strip(), label
            cp = ns.run(["nft", "-c", "-f", "-"], input=text, check=False)
            assert cp.returncode == 0, (label, cp.stderr)
    finally:
        ns.delete()
    assert not ns.exists()
