"""The grpc transform against a real transform.v1.TransformService (python3-grpcio, messages
compiled from the repository's proto by protoc at test time; harness/transform_service.py) and a
real local upstream that records what it receives: CONTINUE with modified requests and responses,
REJECT (with a response, without one, status 0), annotations in the audit trace, bodies sent only
when asked, two grpc transforms chained, TLS and mTLS to the service, the per-call deadline and
failure_mode (a hung or dead service never stalls or silently opens the proxy), reload to a new
target, HTTP/2 clients, the tunnel context, config errors and the Go proxy's configs under -check."""
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from harness import certs, clients
from harness.configs import allowlist_transform
from harness.h2_client import H2Client
from harness.h2_upstream import H2UpstreamServer
from harness.proxy import run_binary
from harness.transform_service import TransformService, headers_of, pb, set_headers
from harness import yamlgen

pytestmark = pytest.mark.timeout(120)

GO_CONFIGS = Path("/work/shared/reference/go-configs")
TOKEN = "e2e-grpc-management-token"


@pytest.fixture
def service():
    started = []

    def make(**kw):
        srv = TransformService(**kw).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def grpc_entry(srv=None, *, target=None, name="policy", **kw):
    cfg = {"name": name, "target": target or srv.target}
    cfg.update(kw)
    return {"name": "grpc", "config": cfg}


def start(proxy_factory, *entries, **kw):
    return proxy_factory.start(transforms=[allowlist_transform("allowed.test"), *entries], **kw)


def get(proxy, upstream, path, **kw):
    return clients.curl(f"http://127.0.0.1:{proxy.http_port}{path}",
                        headers=[f"Host: allowed.test:{upstream.port}", *kw.pop("headers", [])], **kw)


def get_with_head(proxy, upstream, path, tmp_path, **kw):
    """get(), plus the response head as curl dumped it (lower-cased)."""
    dump = tmp_path / f"head-{time.monotonic_ns()}.txt"
    r = get(proxy, upstream, path, extra=["-D", str(dump), *kw.pop("extra", [])], **kw)
    return r, dump.read_text().lower() if dump.exists() else ""


def trace(rec, name="policy", phase="request_transforms"):
    [tr] = [t for t in rec.get(phase, []) if t["name"] == name]
    return tr


def continue_request(**modified):
    p = pb()
    reply = p.TransformRequestResponse(action=p.TRANSFORM_ACTION_CONTINUE)
    headers = modified.pop("headers", None)
    if modified or headers:
        reply.modified_request.CopyFrom(p.HttpRequest(**modified))
        if headers:
            set_headers(reply.modified_request.headers, headers)
    return reply


def continue_response(annotations=None, **modified):
    p = pb()
    reply = p.TransformResponseResponse(action=p.TRANSFORM_ACTION_CONTINUE)
    headers = modified.pop("headers", None)
    if modified or headers:
        reply.modified_response.CopyFrom(p.HttpResponse(**modified))
        if headers:
            set_headers(reply.modified_response.headers, headers)
    for k, v in (annotations or {}).items():
        reply.annotations[k] = v
    return reply


# --- CONTINUE ---------------------------------------------------------------------------------

def test_continue_applies_modified_request(proxy_factory, http_upstream, service):
    def on_request(req, ctx):
        return continue_request(method="PUT", url="/echo/rewritten?b=2", host="elsewhere.test",
                                headers={"X-Added": ["one", "two"], "Content-Type": "text/x-new"},
                                body=b"new body bytes")

    srv = service(on_request=on_request)
    proxy = start(proxy_factory, grpc_entry(srv, send_request_body=True))
    r = get(proxy, http_upstream, "/echo/original?a=1", method="POST", data="original body",
            headers=["X-Original: yes", "Content-Type: text/plain"])
    assert r.http_code == 200, r
    got = r.json()
    assert got["method"] == "PUT" and got["path"] == "/echo/rewritten" and got["query"] == "b=2", got
    names = {k.lower(): v for k, v in got["headers"]}
    assert "x-original" not in names and names["content-type"] == "text/x-new", got["headers"]
    assert [v for k, v in got["headers"] if k.lower() == "x-added"] == ["one", "two"]
    assert names["host"] == f"allowed.test:{http_upstream.port}"  # the Host policy saw
    assert got["body"] == "new body bytes" and names["content-length"] == str(len("new body bytes"))
    # What the service was shown: origin-form url, Host as the host field, the client, the body.
    [req] = srv.calls_of("request")
    assert req.request.method == "POST" and req.request.url == "/echo/original?a=1"
    assert req.request.host == f"allowed.test:{http_upstream.port}"
    assert req.request.remote_addr.startswith("127.0.0.1:")
    assert req.request.body == b"original body"
    assert headers_of(req.request.headers)["X-Original"] == ["yes"] and "Host" not in headers_of(req.request.headers)
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "allow" and rec["audit"]["path"] == "/echo/original"
    assert trace(rec)["annotations"]["host_ignored"] == "elsewhere.test"


def test_continue_applies_modified_response(proxy_factory, http_upstream, service, tmp_path):
    def on_response(req, ctx):
        assert req.response.status_code == 200
        return continue_response(status_code=201, headers={"X-From-Service": "yes"}, body=b"replaced body")

    srv = service(on_response=on_response)
    proxy = start(proxy_factory, grpc_entry(srv, send_response_body=True))
    r, head = get_with_head(proxy, http_upstream, "/bytes/5000?chunked=1", tmp_path)
    assert r.http_code == 201, r
    assert r.body == b"replaced body", r.body[-200:]
    assert "x-from-service: yes" in head and f"content-length: {len('replaced body')}" in head, head
    assert "transfer-encoding" not in head
    [resp] = srv.calls_of("response")
    assert resp.response.body == b"0123456789abcdef" * 312 + b"01234567"
    assert resp.request.url == "/bytes/5000?chunked=1"
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["status_code"] == 201


def test_untouched_buffered_response_is_relayed_whole(proxy_factory, http_upstream, service):
    srv = service()
    proxy = start(proxy_factory, grpc_entry(srv, send_response_body=True))
    r = get(proxy, http_upstream, "/bytes/300000")
    assert r.http_code == 200 and len(r.body) == 300000 and r.body[:16] == b"0123456789abcdef"
    assert len(srv.calls_of("response")[0].response.body) == 300000


# --- REJECT -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["with_response", "absent", "status_zero"])
def test_reject(proxy_factory, http_upstream, service, shape, tmp_path):
    p = pb()

    def on_request(req, ctx):
        reply = p.TransformRequestResponse(action=p.TRANSFORM_ACTION_REJECT)
        reply.annotations["why"] = "policy says no"
        if shape == "with_response":
            reply.response.status_code = 451
            set_headers(reply.response.headers, {"X-Denied-By": "svc"})
            reply.response.body = b"unavailable for legal reasons"
        elif shape == "status_zero":
            reply.response.body = b"zero"
        return reply

    srv = service(on_request=on_request)
    proxy = start(proxy_factory, grpc_entry(srv))
    r, head = get_with_head(proxy, http_upstream, "/echo/x", tmp_path)
    want = 451 if shape == "with_response" else 403
    assert r.http_code == want, r
    if shape == "with_response":
        assert "x-denied-by: svc" in head and r.body == b"unavailable for legal reasons"
    assert http_upstream.requests_for("/echo/x") == []
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "reject" and rec["audit"]["status_code"] == want
    assert rec["rejected_by"] == "policy"
    assert trace(rec)["annotations"]["why"] == "policy says no"


def test_response_phase_reject_replaces_response(proxy_factory, http_upstream, service):
    p = pb()

    def on_response(req, ctx):
        reply = p.TransformResponseResponse(action=p.TRANSFORM_ACTION_REJECT)
        reply.modified_response.status_code = 409
        reply.modified_response.body = b"conflict from service"
        reply.annotations["phase"] = "response"
        return reply

    srv = service(on_response=on_response)
    proxy = start(proxy_factory, grpc_entry(srv))
    r = get(proxy, http_upstream, "/echo/y")
    assert r.http_code == 409 and r.body == b"conflict from service", r
    assert len(http_upstream.requests_for("/echo/y")) == 1
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "reject" and "rejected_by" not in rec
    assert trace(rec, phase="response_transforms")["annotations"]["phase"] == "response"


# --- what is sent -----------------------------------------------------------------------------

def test_bodies_only_when_asked(proxy_factory, http_upstream, service):
    srv = service(on_response=lambda req, ctx: continue_response(annotations={"seen": "yes"}))
    proxy = start(proxy_factory, grpc_entry(srv))
    r = get(proxy, http_upstream, "/echo/b", method="POST", data="secret-ish body")
    assert r.http_code == 200 and r.json()["body"] == "secret-ish body"
    [req] = srv.calls_of("request")
    [resp] = srv.calls_of("response")
    assert req.request.body == b"" and resp.request.body == b"" and resp.response.body == b""
    assert resp.response.status_code == 200 and "Content-Type" in headers_of(resp.response.headers)
    [rec] = proxy.wait_audit(1)
    assert trace(rec, phase="response_transforms")["annotations"] == {"seen": "yes"}


def test_rules_limit_the_calls(proxy_factory, http_upstream, service):
    srv = service()
    proxy = start(proxy_factory, grpc_entry(srv, rules=[{"host": "allowed.test", "paths": ["/echo/only/*"]}]))
    assert get(proxy, http_upstream, "/echo/other").http_code == 200
    assert srv.calls == []
    assert get(proxy, http_upstream, "/echo/only/this").http_code == 200
    assert [m for m, _ in srv.calls] == ["request", "response"]


def test_body_over_the_cap_is_not_sent_and_not_cut(proxy_factory, http_upstream, service):
    srv = service()
    proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"),
                                            grpc_entry(srv, send_request_body=True, send_response_body=True)],
                                proxy_extra={"max_request_body_bytes": 1000, "max_response_body_bytes": 1000,
                                             "oversize_body": "forward"})
    r = get(proxy, http_upstream, "/bytes/50000", method="POST", data="z" * 5000)
    assert r.http_code == 200 and len(r.body) == 50000
    [req] = srv.calls_of("request")
    [resp] = srv.calls_of("response")
    assert req.request.body == b"" and resp.response.body == b""
    assert http_upstream.requests_for("/bytes/50000")[0]["body_length"] == 5000
    [rec] = proxy.wait_audit(1)
    assert "request_body" in trace(rec)["annotations"]
    assert "response_body" in trace(rec, phase="response_transforms")["annotations"]


def test_response_over_the_cap_is_refused_by_default(proxy_factory, http_upstream, service, tmp_path):
    srv = service()
    proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"),
                                            grpc_entry(srv, send_response_body=True)],
                                proxy_extra={"max_response_body_bytes": 1000})
    r, head = get_with_head(proxy, http_upstream, "/bytes/50000", tmp_path)
    assert r.http_code == 502, r
    assert "error=http_response_body_size" in head, head
    assert srv.calls_of("response") == []
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "error" and "max_response_body_bytes" in rec["error"]


# --- two transforms ---------------------------------------------------------------------------

def test_two_grpc_transforms_chain_in_config_order(proxy_factory, http_upstream, service, tmp_path):
    def step(n):
        def on_request(req, ctx):
            prev = headers_of(req.request.headers).get("X-Chain", [""])[0]
            headers = {k: list(v.values) for k, v in req.request.headers.items()}
            headers["X-Chain"] = [f"req{n}-{prev}"]
            return continue_request(headers=headers)

        def on_response(req, ctx):
            prev = headers_of(req.response.headers).get("X-Chain", [""])[0]
            headers = {k: list(v.values) for k, v in req.response.headers.items()}
            headers["X-Chain"] = [f"resp{n}-{prev}"]
            return continue_response(headers=headers)
        return on_request, on_response

    one, two = service(**dict(zip(("on_request", "on_response"), step(1)))), \
        service(**dict(zip(("on_request", "on_response"), step(2))))
    proxy = start(proxy_factory, grpc_entry(one, name="grpc-step-1", send_request_body=True, send_response_body=True),
                  grpc_entry(two, name="grpc-step-2", send_request_body=True, send_response_body=True))
    r, head = get_with_head(proxy, http_upstream, "/echo/chain", tmp_path)
    assert r.http_code == 200
    assert "x-chain: resp2-resp1-" in head, head
    got = r.json()
    assert [v for k, v in got["headers"] if k.lower() == "x-chain"] == ["req2-req1-"]
    [rec] = proxy.wait_audit(1)
    assert [t["name"] for t in rec["response_transforms"] if t["name"].startswith("grpc")] == \
        ["grpc-step-1", "grpc-step-2"]


# --- TLS to the service -----------------------------------------------------------------------

@pytest.fixture
def service_pki(tmp_path):
    ca, ca_key = certs.make_ca(tmp_path / "svc", "grpc service test CA")
    server = certs.make_server_cert(tmp_path / "svc", ca, ca_key, stem="server",
                                    dns_names=["localhost"], ips=["127.0.0.1"])
    return ca, server, make_client_cert(tmp_path / "svc", ca, ca_key)


def make_client_cert(outdir, ca, ca_key):
    """A client certificate (clientAuth) signed by `ca`, for mTLS to the service."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iron-proxy grpc client")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pair = certs.CertPair(outdir / "client.crt", outdir / "client.key", cert)
    pair.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return pair


def test_tls_and_mtls_to_the_service(proxy_factory, http_upstream, service, service_pki):
    ca, server, client = service_pki
    tls_srv = service(cert=server.cert_path, key=server.key_path)
    proxy = start(proxy_factory, grpc_entry(tls_srv, tls={"enabled": True, "ca_cert": str(ca.cert_path)}))
    assert get(proxy, http_upstream, "/echo/tls").http_code == 200
    assert len(tls_srv.calls) == 2

    mtls_srv = service(cert=server.cert_path, key=server.key_path, client_ca=ca.cert_path)
    no_client_cert = start(proxy_factory, grpc_entry(mtls_srv, tls={"enabled": True, "ca_cert": str(ca.cert_path)}))
    assert get(no_client_cert, http_upstream, "/echo/mtls").http_code == 502
    with_client_cert = start(proxy_factory, grpc_entry(mtls_srv, tls={
        "enabled": True, "ca_cert": str(ca.cert_path), "cert": str(client.cert_path), "key": str(client.key_path)}))
    assert get(with_client_cert, http_upstream, "/echo/mtls").http_code == 200
    assert len(mtls_srv.calls) == 2

    # A service certificate the configured CA did not issue: the call fails (deny: 502).
    untrusted = start(proxy_factory, grpc_entry(tls_srv, tls={"enabled": True, "ca_cert": str(client.cert_path)}))
    assert get(untrusted, http_upstream, "/echo/untrusted").http_code == 502


# --- deadline and failure_mode ----------------------------------------------------------------

def test_hung_service_hits_the_deadline_and_the_proxy_keeps_serving(proxy_factory, http_upstream, service, tmp_path):
    srv = service(delay=5)
    proxy = start(proxy_factory, grpc_entry(srv, timeout="500ms"))
    began = time.monotonic()
    r, head = get_with_head(proxy, http_upstream, "/echo/hung", tmp_path)
    assert r.http_code == 502 and time.monotonic() - began < 4, r
    assert "proxy-status: iron-proxy; error=proxy_internal_error" in head and "deadline exceeded" in head, head
    srv.delay = 0
    assert get(proxy, http_upstream, "/echo/after").http_code == 200
    recs = proxy.wait_audit(2)
    hung = next(x for x in recs if x["audit"]["path"] == "/echo/hung")
    assert hung["audit"]["action"] == "error" and "deadline exceeded after 500ms" in hung["error"]
    assert trace(hung)["action"] == "error"
    assert http_upstream.requests_for("/echo/hung") == []
    metrics = clients.curl(proxy.metrics_url + "/metrics").text
    assert 'iron_proxy_transform_errors_total{transform="policy",phase="request"} 1' in metrics
    assert 'iron_proxy_transform_duration_seconds_count{transform="policy",phase="request"} 2' in metrics


def test_workers_keep_serving_while_the_service_thinks(proxy_factory, http_upstream, service):
    """Calls are awaited, never blocking a worker thread: with more calls out than the proxy has
    workers, a request the rules do not send to the service is answered at once."""
    srv = service(delay=1.5)
    proxy = start(proxy_factory, grpc_entry(srv, rules=[{"host": "allowed.test", "paths": ["/echo/slow/*"]}]))
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(get(proxy, http_upstream, f"/echo/slow/{i}")))
               for i in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(srv.calls) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    began = time.monotonic()
    fast = get(proxy, http_upstream, "/echo/fast")
    fast_took = time.monotonic() - began
    for t in threads:
        t.join(20)
    assert fast.http_code == 200 and fast_took < 1.2, (fast, fast_took)
    assert sorted(r.http_code for r in results) == [200] * 6


def test_body_replacement_the_service_was_not_shown_is_refused(proxy_factory, http_upstream, service):
    srv = service(on_request=lambda q, c: continue_request(body=b"smuggled"))
    proxy = start(proxy_factory, grpc_entry(srv))  # send_request_body: false
    r = get(proxy, http_upstream, "/echo/nobody", method="POST", data="original")
    assert r.http_code == 502 and http_upstream.requests_for("/echo/nobody") == []
    [rec] = proxy.wait_audit(1)
    assert "send_request_body" in rec["error"]


def test_shutdown_with_a_call_still_out_exits_cleanly(proxy_factory, http_upstream, service):
    """A call outlasting the drain: the proxy cancels it and exits promptly, without a crash, and
    the request is still audited."""
    srv = service(delay=20)
    proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test"), grpc_entry(srv, timeout="30s")],
                                proxy_extra={"shutdown_timeout": "1s"})
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", get(proxy, http_upstream, "/echo/pending")), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not srv.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.calls
    began = time.monotonic()
    rc = proxy.stop()
    assert rc == 0 and time.monotonic() - began < 4.5, (rc, proxy.stderr_text()[-2000:])
    t.join(10)
    assert "AddressSanitizer" not in proxy.stderr_text()
    recs = proxy.wait_audit(1)
    assert recs[0]["audit"]["path"] == "/echo/pending" and recs[0]["audit"]["action"] != "allow"


@pytest.mark.parametrize("mode", ["deny", "allow"])
def test_dead_service_follows_failure_mode(proxy_factory, http_upstream, mode):
    proxy = start(proxy_factory, grpc_entry(target="127.0.0.1:9", failure_mode=mode, timeout="2s"))
    r = get(proxy, http_upstream, "/echo/dead")
    [rec] = proxy.wait_audit(1)
    if mode == "deny":
        assert r.http_code == 502 and http_upstream.requests_for("/echo/dead") == []
        assert "unavailable" in rec["error"]
    else:
        assert r.http_code == 200
        assert "unavailable" in trace(rec)["annotations"]["error"]
        assert "unavailable" in trace(rec, phase="response_transforms")["annotations"]["error"]


def test_failures_let_pass_by_allow_mode_still_count_as_errors(proxy_factory, http_upstream):
    """failure_mode: allow opens the proxy for the call that failed, but the failure is not hidden:
    the trace keeps its error and iron_proxy_transform_errors_total counts it, per phase."""
    proxy = start(proxy_factory, grpc_entry(target="127.0.0.1:9", failure_mode="allow", timeout="2s"))
    assert get(proxy, http_upstream, "/echo/open").http_code == 200
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["action"] == "allow"
    for phase in ("request_transforms", "response_transforms"):
        tr = trace(rec, phase=phase)
        assert tr["action"] == "allow" and "unavailable" in tr["error"], tr
    metrics = clients.curl(proxy.metrics_url + "/metrics").text
    assert 'iron_proxy_transform_errors_total{transform="policy",phase="request"} 1' in metrics, metrics
    assert 'iron_proxy_transform_errors_total{transform="policy",phase="response"} 1' in metrics, metrics


def hanging_service(service, path):
    """A service whose call for `path` does not answer until the proxy cancels it (or 20 s pass);
    `cancelled` is set when the service saw the cancellation."""
    cancelled = threading.Event()

    def on_request(req, ctx):
        if req.request.url.startswith(path):
            deadline = time.monotonic() + 20
            while ctx.is_active() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not ctx.is_active():
                cancelled.set()
        return continue_request()

    return service(on_request=on_request), cancelled


def wait_calls(srv, n=1):
    deadline = time.monotonic() + 5
    while len(srv.calls) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(srv.calls) >= n


def test_client_leaving_cancels_the_call(proxy_factory, http_upstream, service):
    """An HTTP/1.1 client closes its connection while the call is out: the service sees the
    cancellation at once (not at the 30 s deadline), the exchange is recorded as the client's
    cancel with nothing dialled, and the proxy keeps serving."""
    srv, cancelled = hanging_service(service, "/echo/hang")
    proxy = start(proxy_factory, grpc_entry(srv, timeout="30s"))
    sock = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=5)
    sock.sendall(f"GET /echo/hang HTTP/1.1\r\nHost: allowed.test:{http_upstream.port}\r\n\r\n".encode())
    wait_calls(srv)
    sock.close()
    assert cancelled.wait(5), "the service never saw the cancellation"
    [rec] = proxy.wait_audit(1, timeout=5)
    assert rec["audit"]["path"] == "/echo/hang" and rec["audit"]["action"] == "client_cancel", rec
    assert trace(rec)["annotations"].get("cancelled"), rec
    assert get(proxy, http_upstream, "/echo/after").http_code == 200
    assert http_upstream.requests_for("/echo/hang") == []
    metrics = clients.curl(proxy.metrics_url + "/metrics").text
    assert 'iron_proxy_transform_errors_total{transform="policy",phase="request"} 0' in metrics, metrics


def test_http2_stream_reset_cancels_the_call(proxy_factory, https_upstream, service, bed):
    srv, cancelled = hanging_service(service, "/echo/hang")
    proxy = start(proxy_factory, grpc_entry(srv, timeout="30s"), https_listen=f"127.0.0.1:{https_upstream.port}")
    with H2Client.connect(("127.0.0.1", proxy.https_port), "allowed.test", bed.ca_cert) as c:
        sid = c.request("GET", "/echo/hang", f"allowed.test:{https_upstream.port}")
        wait_calls(srv)
        c.reset(sid)
        assert cancelled.wait(5), "the service never saw the cancellation"
        other = c.wait(c.request("GET", "/echo/after", f"allowed.test:{https_upstream.port}"))
        assert other.status == 200, other
    recs = proxy.wait_audit(2, timeout=5)
    hung = next(r for r in recs if r["audit"]["path"] == "/echo/hang")
    assert hung["audit"]["action"] == "client_cancel", hung
    assert https_upstream.requests_for("/echo/hang") == []


def test_unimplemented_method_counts_as_a_failure(proxy_factory, http_upstream, service):
    srv = service(implement_response=False)
    proxy = start(proxy_factory, grpc_entry(srv))
    r = get(proxy, http_upstream, "/echo/unimpl")
    assert r.http_code == 502
    [rec] = proxy.wait_audit(1)
    assert "unimplemented" in rec["error"] and rec["error"].startswith("transform policy response:")


# --- reload, HTTP/2, tunnels ------------------------------------------------------------------

def test_reload_swaps_to_the_new_target(proxy_factory, http_upstream, service, tmp_path):
    first = service(on_response=lambda q, c: continue_response(headers={"X-Svc": "first"}))
    second = service(on_response=lambda q, c: continue_response(headers={"X-Svc": "second"}))
    cfg = proxy_factory.config(transforms=[allowlist_transform("allowed.test"), grpc_entry(first)],
                               extra={"management": {"listen": "127.0.0.1:0"}})
    p = proxy_factory.start(config=cfg, env={"IRON_MANAGEMENT_API_KEY": TOKEN})
    assert "x-svc: first" in get_with_head(p, http_upstream, "/echo/1", tmp_path)[1]
    cfg["transforms"][1] = grpc_entry(second)
    p.config_path.write_text(yamlgen.dump(cfg))
    r = clients.curl(p.management_url + "/v1/reload", method="POST", headers=[f"Authorization: Bearer {TOKEN}"])
    assert r.http_code == 200, r
    assert "x-svc: second" in get_with_head(p, http_upstream, "/echo/2", tmp_path)[1]
    assert len(first.calls) == 2 and len(second.calls) == 2


@pytest.fixture(params=["h2", "h1"], ids=["h2-origin", "h1-origin"])
def origin(request):
    """An HTTPS origin speaking HTTP/2 only, or HTTP/1.1 only (the proxy translates)."""
    return request.getfixturevalue("h2_upstream" if request.param == "h2" else "https_upstream")


@pytest.mark.parametrize("client", ["--http2", "--http1.1"])
def test_h2_and_h1_clients_and_origins_get_the_same_behaviour(proxy_factory, origin, service, ca_cert, client):
    if client == "--http1.1" and isinstance(origin, H2UpstreamServer):
        pytest.skip("an HTTP/1.1 client cannot reach an h2-only origin through the proxy (with or without transforms)")
    port = origin.port
    srv = service(on_request=lambda q, c: continue_request(url="/echo/rewritten")
                  if q.request.url == "/echo/original" else continue_request(),
                  on_response=lambda q, c: continue_response(status_code=202, body=b"replaced over h2")
                  if q.request.url == "/echo/rewritten" else continue_response())
    proxy = proxy_factory.start(https_listen=f"127.0.0.1:{port}",
                                transforms=[allowlist_transform("allowed.test"),
                                            grpc_entry(srv, send_response_body=True)])

    def fetch(path):
        return clients.curl(f"https://allowed.test:{port}{path}", resolve=f"allowed.test:{port}:127.0.0.1",
                            cacert=ca_cert, extra=[client])

    r = fetch("/echo/original")
    want_version = "2" if client == "--http2" else "1.1"
    assert r.http_code == 202 and r.info.get("http_version") == want_version and r.body == b"replaced over h2", r
    assert len(origin.requests_for("/echo/rewritten")) == 1
    [req, *_] = srv.calls_of("request")
    assert req.context.sni == "allowed.test" and req.request.url == "/echo/original"
    # A buffered body left as it was is relayed whole, after the service saw it.
    whole = fetch("/bytes/200000")
    assert whole.http_code == 200 and len(whole.body) == 200000, whole
    assert len(srv.calls_of("response")[-1].response.body) == 200000


def test_tunnel_context(proxy, https_upstream, service, ca_cert, proxy_factory):
    port = https_upstream.port
    srv = service()
    p = start(proxy_factory, grpc_entry(srv))
    r = clients.curl(f"https://allowed.test:{port}/echo/tunnelled", proxy=p.tunnel_url, cacert=ca_cert)
    assert r.http_code == 200, r
    [req] = srv.calls_of("request")
    assert req.context.sni == "allowed.test"
    assert req.context.tunnel.target == f"allowed.test:{port}"
    assert [t.name for t in req.context.tunnel.request_transforms] == ["allowlist"]


def test_service_skips_deny_cidrs_but_workloads_cannot_reach_it(proxy_factory, http_upstream, service):
    srv = service()
    proxy = proxy_factory.start(transforms=[allowlist_transform("allowed.test", "127.0.0.1"), grpc_entry(srv)],
                                deny_cidrs=["127.0.0.1/32"])
    assert get(proxy, http_upstream, "/echo/ok").http_code == 200
    r = clients.curl(f"http://127.0.0.1:{proxy.http_port}/transform.v1.TransformService/TransformRequest",
                     method="POST", data="", headers=[f"Host: 127.0.0.1:{srv.port}"])
    assert r.http_code == 502
    # The workload's request was shown to the service like any other, then refused at the dial.
    assert [c.request.url for c in srv.calls_of("request")] == ["/echo/ok", "/transform.v1.TransformService/TransformRequest"]
    recs = proxy.wait_audit(2)
    blocked = next(x for x in recs if x["audit"]["path"].startswith("/transform.v1"))
    assert "denied by upstream_deny_cidrs" in blocked["error"]


# --- config -----------------------------------------------------------------------------------

def check(bed, tmp_path, grpc_config: str):
    cfg = tmp_path / "grpc.yaml"
    cfg.write_text(f"""
dns: {{enabled: false}}
proxy: {{http_listen: "127.0.0.1:0"}}
tls: {{ca_cert: {bed.ca_cert}, ca_key: {bed.ca_key}}}
transforms:
  - name: grpc
    config: {grpc_config}
""")
    cp = run_binary(["-check", "-config", str(cfg)])
    return cp.returncode, cp.stderr + cp.stdout


@pytest.mark.parametrize("config, needle", [
    ("{target: 'x:1'}", "grpc transform: name is required"),
    ("{name: n}", 'grpc transform "n": target is required'),
    ("{name: n, target: 'x:1', tls: {enabled: true, ca_cert: EMPTY}}", "ca_cert contains no valid certificates"),
    ("{name: n, target: 'x:1', tls: {enabled: true, cert: CERT}}", "both cert and key are required for mTLS"),
    ("{name: n, target: 'x:1', timeout: soon}", "timeout"),
    ("{name: n, target: 'x:1', failure_mode: maybe}", 'invalid failure_mode "maybe"'),
    ("{name: n, target: 'x:1', unknown_key: 1}", "unknown_key"),
])
def test_config_errors(bed, tmp_path, service_pki, config, needle):
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    config = config.replace("EMPTY", str(empty)).replace("CERT", str(service_pki[2].cert_path))
    rc, out = check(bed, tmp_path, config)
    assert rc != 0 and needle in out, out


def test_valid_config_passes_check(bed, tmp_path, service_pki):
    ca, _, client = service_pki
    rc, out = check(bed, tmp_path, f"{{name: n, target: 'dns:///localhost:1', timeout: 250ms, failure_mode: allow, "
                                   f"send_request_body: true, send_response_body: true, rules: [{{host: '*.test'}}], "
                                   f"tls: {{enabled: true, ca_cert: {ca.cert_path}, cert: {client.cert_path}, "
                                   f"key: {client.key_path}}}}}")
    assert rc == 0, out


@pytest.mark.skipif(not GO_CONFIGS.is_dir(), reason="the Go proxy's configs are not on this machine")
def test_go_grpc_pipeline_config_passes_check(bed, tmp_path):
    (tmp_path / "tmp").mkdir()
    shutil.copy(bed.ca_cert, tmp_path / "tmp" / "ca.crt")
    shutil.copy(bed.ca_key, tmp_path / "tmp" / "ca.key")
    # The rendered copy: the verbatim file holds Go-template placeholders for the targets.
    src = GO_CONFIGS / "rendered" / "integration_test__testdata__grpc_pipeline.yaml"
    cp = run_binary(["-check", "-config", str(src)], cwd=tmp_path, env={"TEST_SECRET": "s"})
    assert cp.returncode == 0, cp.stderr


@pytest.mark.skipif(not GO_CONFIGS.is_dir(), reason="the Go proxy's configs are not on this machine")
def test_go_example_config_passes_check(bed, tmp_path, service_pki):
    """The Go proxy's example config, its /etc/iron-proxy/ files pointed at files made here (the
    proxy CA, and the service CA and client pair its grpc transform's tls block names)."""
    ca, _, client = service_pki
    files = {"ca.crt": bed.ca_cert, "ca.key": bed.ca_key, "grpc-ca.pem": ca.cert_path,
             "grpc-client.pem": client.cert_path, "grpc-client-key.pem": client.key_path}
    etc = tmp_path / "etc"
    etc.mkdir()
    for name, src in files.items():
        shutil.copy(src, etc / name)
    text = (GO_CONFIGS / "iron-proxy.example.yaml").read_text().replace("/etc/iron-proxy/", f"{etc}/")
    cfg = tmp_path / "example.yaml"
    cfg.write_text(text)
    cp = run_binary(["-check", "-config", str(cfg)], env={"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"})
    assert cp.returncode == 0, cp.stderr
