"""Audit sinks and the startup log (Go's JSON lines and `msg` strings): stderr by default, a 0600 file when
log.audit_path is set; one record per request; startup lines carry the bound addresses."""
import os
import stat

from harness import audit, clients


def test_audit_goes_to_stderr_without_audit_path(proxy_factory, https_upstream, ca_cert):
    proxy = proxy_factory.start(audit=False)
    assert proxy.audit_path is None
    r = clients.curl(f"https://allowed.test:{https_upstream.port}/echo", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_code == 200, r
    recs = proxy.wait_audit(2)  # read from stderr
    assert len(recs) == 2
    for rec in recs:
        audit.check_shape(rec)


def test_audit_file_is_private_and_stderr_has_no_records(proxy, https_upstream, ca_cert):
    r = clients.curl(f"https://allowed.test:{https_upstream.port}/echo", proxy=proxy.tunnel_url,
                     cacert=ca_cert)
    assert r.http_code == 200, r
    proxy.wait_audit(2)
    assert stat.S_IMODE(os.stat(proxy.audit_path).st_mode) == 0o600
    assert not [x for x in proxy.log_records() if x.get("msg") == "request"], \
        "audit records went to stderr although log.audit_path is set"


def test_startup_log_lines(proxy):
    msgs = [r.get("msg") for r in proxy.log_records()]
    for m in ("http proxy starting", "https proxy starting", "tunnel proxy starting",
              "iron-proxy ready"):
        assert m in msgs, msgs
    for rec in proxy.log_records():
        assert "time" in rec and "level" in rec and "msg" in rec, rec
        if rec["msg"] in ("http proxy starting", "https proxy starting", "tunnel proxy starting"):
            host, _, port = rec["addr"].rpartition(":")
            assert host == "127.0.0.1" and int(port) > 0, rec
    ready = msgs.index("iron-proxy ready")
    assert all(msgs.index(m) < ready for m in
               ("http proxy starting", "https proxy starting", "tunnel proxy starting"))


def test_every_outcome_is_audited_exactly_once(proxy, https_upstream, http_upstream, ca_cert):
    port = https_upstream.port
    outcomes = [
        clients.curl(f"https://allowed.test:{port}/echo", proxy=proxy.tunnel_url, cacert=ca_cert),
        clients.curl(f"https://denied.test:{port}/", proxy=proxy.tunnel_url, cacert=ca_cert),
        clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                     cacert=ca_cert),
        clients.curl(f"https://denied.test:{port}/", resolve=f"denied.test:{port}:127.0.0.1",
                     cacert=ca_cert),
        clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo",
                     headers=[f"Host: allowed.test:{http_upstream.port}"]),
        clients.curl(f"http://127.0.0.1:{proxy.http_port}/echo",
                     headers=[f"Host: denied.test:{http_upstream.port}"]),
    ]
    assert [o.http_code if o.http_connect != 403 else 403 for o in outcomes] == \
        [200, 403, 200, 403, 200, 403], [str(o) for o in outcomes]
    # tunnel allow = 2 records, tunnel deny = 1, the rest 1 each
    recs = proxy.wait_audit(7, settle=0.5)
    assert len(recs) == 7, recs
    for rec in recs:
        audit.check_shape(rec)
    assert sorted(r["audit"]["action"] for r in recs) == sorted(
        ["allow", "allow", "reject", "allow", "reject", "allow", "reject"])
