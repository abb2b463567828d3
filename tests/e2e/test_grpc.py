"""gRPC through the MITM (issue 5): python3-grpcio clients against a local gRPC TLS server
(harness/grpc_upstream.py, generic handlers on raw bytes) on 127.0.0.2, through the HTTPS listener
(target 127.0.0.1:<port>, ssl_target_name_override and :authority allowed.test) and through the
tunnel (grpc.http_proxy: gRPC sends CONNECT itself). Unary, client/server/bidirectional streaming,
statuses and trailing metadata carried intact in the trailers, secrets swapped in metadata, one
audit record per call."""
import os
import queue

import pytest

grpc = pytest.importorskip("grpc")

from harness import audit  # noqa: E402
from harness.configs import allowlist_transform, secret_header_transform  # noqa: E402
from harness.grpc_upstream import FAIL_MESSAGE, SERVICE, GrpcUpstream, Stubs, channel  # noqa: E402
from harness.upstream import bind_paired  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CALL_TIMEOUT = 15


@pytest.fixture
def grpc_upstream(upstream_pki):
    """gRPC TLS server on 127.0.0.2:P, where 127.0.0.1:P is free for the HTTPS listener."""
    srv = bind_paired(lambda port: GrpcUpstream("127.0.0.2", port, upstream_pki.server.cert_path,
                                                upstream_pki.server.key_path), "127.0.0.1")
    srv.start()
    yield srv
    srv.stop()


def start_for(proxy_factory, upstream, **kw):
    return proxy_factory.start(https_listen=f"127.0.0.1:{upstream.port}", **kw)


def grpc_channel(proxy, upstream, ca_cert, listener, host="allowed.test"):
    port = upstream.port
    if listener == "https":
        return channel(f"127.0.0.1:{proxy.https_port}", ca_cert, server_name=host,
                       authority=f"{host}:{port}")
    return channel(f"{host}:{port}", ca_cert, http_proxy=proxy.tunnel_url)


def ready(ch, timeout=10):
    try:
        grpc.channel_ready_future(ch).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        pytest.fail("the gRPC channel through the proxy did not become ready within "
                    f"{timeout} s (TLS with ALPN h2 to the proxy?)", pytrace=False)


@pytest.fixture(params=["https", "tunnel"])
def listener(request):
    return request.param


@pytest.fixture
def grpc_proxy(proxy_factory, grpc_upstream):
    return start_for(proxy_factory, grpc_upstream)


@pytest.fixture
def stubs(grpc_proxy, grpc_upstream, ca_cert, listener):
    ch = grpc_channel(grpc_proxy, grpc_upstream, ca_cert, listener)
    ready(ch)
    yield Stubs(ch)
    ch.close()


def call_records(proxy, method, n=1):
    path = f"/{SERVICE}/{method}"
    return proxy.wait_audit(n, predicate=lambda r: r["audit"]["path"] == path)


def check_call_record(rec, method, port, listener):
    a = audit.check_shape(rec)
    assert a["method"] == "POST", rec
    assert a["path"] == f"/{SERVICE}/{method}", rec
    assert a["status_code"] == 200, rec
    assert a["action"] == "allow", rec
    assert a["host"] == f"allowed.test:{port}", rec
    if listener == "tunnel":
        assert rec["tunnel"]["target"] == f"allowed.test:{port}", rec
    else:
        assert a["sni"] == "allowed.test", rec


# --- the four call shapes -------------------------------------------------------------------------

def test_unary(stubs, grpc_proxy, grpc_upstream, listener):
    payload = b"hello grpc \x00\xff" + bytes(range(256))
    resp, call = stubs.unary.with_call(payload, timeout=CALL_TIMEOUT)
    assert resp == payload
    assert call.code() == grpc.StatusCode.OK
    [seen] = grpc_upstream.calls_for("Unary")
    assert dict(seen["metadata"])["user-agent"].startswith("grpc-python"), seen
    [rec] = call_records(grpc_proxy, "Unary")
    check_call_record(rec, "Unary", grpc_upstream.port, listener)
    if listener == "tunnel":
        [conn] = audit.connect_records(grpc_proxy.audit_records())
        assert conn["audit"]["host"] == f"allowed.test:{grpc_upstream.port}"


def test_unary_4mib_message(stubs, grpc_upstream):
    """A message larger than every default HTTP/2 window goes through whole, both ways."""
    payload = os.urandom(1 << 20) * 4
    resp = stubs.unary(payload, timeout=CALL_TIMEOUT)
    assert len(resp) == len(payload) and resp == payload


def test_server_streaming_100_messages(stubs, grpc_proxy, grpc_upstream, listener):
    got = list(stubs.server_stream(b"100", timeout=CALL_TIMEOUT))
    assert got == [b"message %d" % i for i in range(100)]
    [rec] = call_records(grpc_proxy, "ServerStream")
    check_call_record(rec, "ServerStream", grpc_upstream.port, listener)


def test_client_streaming_100_messages(stubs, grpc_upstream):
    resp = stubs.client_stream(iter([b"x" * 1000] * 100), timeout=CALL_TIMEOUT)
    assert resp == b"100 100000"


def test_bidi_streaming_echo_100_messages_in_lockstep(stubs, grpc_proxy, grpc_upstream, listener):
    """Each message is sent only after the previous echo came back: passes only if the proxy
    relays both directions of the stream as they happen (no buffering until end of stream)."""
    outbox = queue.Queue()

    def requests():
        for _ in range(100):
            try:
                yield outbox.get(timeout=CALL_TIMEOUT)
            except queue.Empty:
                return  # the echo never came back: end the request stream, the test fails below

    responses = stubs.bidi(requests(), timeout=CALL_TIMEOUT)
    outbox.put(b"ping 0")
    for i in range(100):
        msg = next(responses)
        assert msg == b"ping %d" % i
        if i < 99:
            outbox.put(b"ping %d" % (i + 1))
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK
    [rec] = call_records(grpc_proxy, "Bidi")
    check_call_record(rec, "Bidi", grpc_upstream.port, listener)


# --- statuses, trailers ---------------------------------------------------------------------------

def test_error_status_message_and_trailing_metadata_intact(stubs, grpc_proxy, grpc_upstream, listener):
    with pytest.raises(grpc.RpcError) as e:
        stubs.fail(b"", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value
    assert e.value.details() == FAIL_MESSAGE, e.value
    assert ("x-detail", "widget-42") in [(m.key, m.value) for m in e.value.trailing_metadata()]
    # HTTP-wise the call succeeded: the status travels in the trailers.
    [rec] = call_records(grpc_proxy, "Fail")
    check_call_record(rec, "Fail", grpc_upstream.port, listener)


def test_calls_after_an_error_on_the_same_channel(stubs):
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as e:
            stubs.fail(b"", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert stubs.unary(b"still fine", timeout=CALL_TIMEOUT) == b"still fine"


def test_denied_host(proxy_factory, grpc_upstream, ca_cert, listener):
    """HTTPS listener: 403 on the stream, which gRPC reports as PERMISSION_DENIED. Tunnel: the
    CONNECT is refused, so the channel never comes up (UNAVAILABLE)."""
    p = start_for(proxy_factory, grpc_upstream)
    ch = grpc_channel(p, grpc_upstream, ca_cert, listener, host="denied.test")
    try:
        with pytest.raises(grpc.RpcError) as e:
            Stubs(ch).unary(b"hi", timeout=CALL_TIMEOUT)
    finally:
        ch.close()
    want = grpc.StatusCode.PERMISSION_DENIED if listener == "https" else grpc.StatusCode.UNAVAILABLE
    assert e.value.code() == want, e.value
    assert grpc_upstream.calls == []
    rec = p.wait_audit(1)[0]
    assert rec["audit"]["action"] == "reject" and rec["audit"]["status_code"] == 403, rec
    assert rec["rejected_by"] == "allowlist"


# --- secrets in metadata --------------------------------------------------------------------------

PH = "IRONSH_PROXY_grpc-token"
REAL = "real-grpc-secret-91d4"


def test_secret_placeholder_in_metadata_is_swapped(proxy_factory, grpc_upstream, ca_cert, listener):
    p = start_for(proxy_factory, grpc_upstream, env={"E2E_SECRET": REAL},
                  transforms=[allowlist_transform("allowed.test"), secret_header_transform(PH)])
    ch = grpc_channel(p, grpc_upstream, ca_cert, listener)
    try:
        ready(ch)
        resp, call = Stubs(ch).unary.with_call(
            b"payload", metadata=[("authorization", f"Bearer {PH}")], timeout=CALL_TIMEOUT)
        client_saw = repr((resp, call.initial_metadata(), call.trailing_metadata(), call.details()))
    finally:
        ch.close()
    assert resp == b"payload"
    [seen] = grpc_upstream.calls_for("Unary")
    assert dict(seen["metadata"])["authorization"] == f"Bearer {REAL}", seen
    assert PH not in repr(grpc_upstream.calls)
    assert REAL not in client_saw
    [rec] = call_records(p, "Unary")
    assert rec["audit"]["status_code"] == 200
    assert REAL not in p.audit_path.read_text() + p.stderr_text()
