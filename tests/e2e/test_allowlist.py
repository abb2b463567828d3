"""The allowlist transform: warn mode, globs, CIDRs, rules."""
import pytest

from harness import audit, clients


def _https(proxy_port, host, path, ca_cert, **kw):
    return clients.curl(f"https://{host}:{proxy_port}{path}",
                        resolve=f"{host}:{proxy_port}:127.0.0.1", cacert=ca_cert, **kw)


def test_warn_mode_lets_unlisted_hosts_through(proxy_factory, https_upstream, ca_cert):
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}", domains=["allowed.test"],
                                warn=True)
    r = _https(port, "warn.test", "/echo", ca_cert)
    assert r.http_code == 200, r
    assert r.json()["server"] == "https-upstream"

    recs = proxy.wait_audit(1)
    assert len(recs) == 1, recs
    rec = recs[0]
    a = audit.check_shape(rec)
    assert a["action"] == "allow" and a["status_code"] == 200
    assert rec["level"] == "INFO"
    assert "rejected_by" not in rec
    tr = audit.first_transform(rec)
    assert tr["name"] == "allowlist"
    assert tr["action"] == "allow"
    assert tr["annotations"] == {"action": "warn"}

    # A listed host in warn mode carries no annotation.
    r = _https(port, "allowed.test", "/echo", ca_cert)
    assert r.http_code == 200, r
    recs = proxy.wait_audit(2)
    listed = [x for x in recs if x["audit"]["host"].startswith("allowed.test")]
    assert len(listed) == 1
    assert "annotations" not in audit.first_transform(listed[0])


def test_warn_mode_on_connect(proxy_factory, https_upstream, ca_cert):
    proxy = proxy_factory.start(domains=["allowed.test"], warn=True)
    r = clients.curl(f"https://warn.test:{https_upstream.port}/", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_connect == 200 and r.http_code == 200, r
    recs = proxy.wait_audit(2)
    [conn] = audit.connect_records(recs)
    assert conn["audit"]["action"] == "allow"
    assert audit.first_transform(conn)["annotations"] == {"action": "warn"}


CASES = [
    # (domains, host, allowed?)
    (["*.allowed.test"], "sub.allowed.test", True),
    (["*.allowed.test"], "allowed.test", True),   # *.x matches x itself (as Go)
    (["*.allowed.test"], "deep.sub.allowed.test", True),
    (["*.allowed.test"], "notallowed.test", False),
    (["*.allowed.test"], "other.test", False),
    (["allowed.test"], "ALLOWED.TEST", True),     # hosts are lower-cased (Go: case-sensitive)
    (["allowed.test"], "allowed.test.", True),    # and lose one trailing dot
    (["allowed.test"], "sub.allowed.test", False),
    (["a.*.test"], "a.glob.test", True),
    (["a.*.test"], "b.glob.test", False),
    (["*"], "anything.example", True),
    ([], "allowed.test", False),                   # an empty allowlist denies everything
]


@pytest.mark.parametrize("domains,host,allowed", CASES)
def test_domain_matching_on_connect(proxy_factory, domains, host, allowed):
    proxy = proxy_factory.start(domains=domains, https_listen="127.0.0.1:0")
    sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), f"{host}:443")
    sock.close()
    assert status == (200 if allowed else 403), head
    # Only the CONNECT check's record: closing an allowed tunnel unused may be audited too.
    [rec] = proxy.wait_audit(1, predicate=lambda r: r["audit"]["method"] == "CONNECT", settle=0)
    assert rec["audit"]["action"] == ("allow" if allowed else "reject")


def test_cidrs_match_ip_literal_hosts(proxy_factory, https_upstream, ca_cert):
    proxy = proxy_factory.start(domains=[], cidrs=["127.0.0.2/32"])
    port = https_upstream.port
    sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), f"127.0.0.2:{port}")
    sock.close()
    assert status == 200, head
    sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), f"127.0.0.3:{port}")
    sock.close()
    assert status == 403, head
    # Hostnames are never resolved for CIDR matching: allowed.test → 127.0.0.2 is still denied.
    sock, status, head = clients.connect_tunnel(proxy.addr("tunnel"), f"allowed.test:{port}")
    sock.close()
    assert status == 403, head


def test_rules_with_methods_and_paths(proxy_factory, https_upstream, ca_cert):
    port = https_upstream.port
    proxy = proxy_factory.start(
        https_listen=f"127.0.0.1:{port}", domains=[],
        rules=[{"host": "allowed.test", "methods": ["GET"], "paths": ["/echo/*"]}])
    assert _https(port, "allowed.test", "/echo/ok", ca_cert).http_code == 200
    assert _https(port, "allowed.test", "/echo", ca_cert).http_code == 200  # "/x/*" matches "/x"
    assert _https(port, "allowed.test", "/other", ca_cert).http_code == 403
    assert _https(port, "allowed.test", "/echo/ok", ca_cert, method="POST", data="x").http_code == 403
    assert _https(port, "other.test", "/echo/ok", ca_cert).http_code == 403
    recs = proxy.wait_audit(5)
    assert [r["audit"]["status_code"] for r in recs] == [200, 200, 403, 403, 403]


def test_no_transforms_forwards_everything(proxy_factory, https_upstream, ca_cert):
    """An empty pipeline has no default-deny (as Go); deny CIDRs still apply."""
    port = https_upstream.port
    proxy_factory.start(https_listen=f"127.0.0.1:{port}", transforms=[])
    r = _https(port, "denied.test", "/echo", ca_cert)
    assert r.http_code == 200, r


def test_denial_names_its_reason_in_the_trace(proxy_factory, https_upstream, ca_cert):
    """A rejecting transform says why: the allowlist's trace carries `reason`, next to
    rejected_by (the Go proxy records only which transform rejected)."""
    port = https_upstream.port
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}", domains=["allowed.test"])
    r = _https(port, "denied.test", "/echo", ca_cert)
    assert r.http_code == 403, r
    [rec] = proxy.wait_audit(1)
    assert rec["rejected_by"] == "allowlist", rec
    tr = audit.first_transform(rec)
    assert tr["action"] == "reject" and tr["annotations"] == {"reason": "host not in allowlist"}, tr
