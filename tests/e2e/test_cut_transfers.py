"""A transfer cut by either peer mid-body is audited with an error that says how far it got,
never as a clean 200: the origin closing before a Content-Length body is complete or before the
last chunk, resetting an HTTP/2 stream, or closing while the request body is still coming; the
client leaving mid-download or mid-upload. Through the HTTPS listener (HTTP/1.1, and HTTP/2
translated to HTTP/1.1), the tunnel and the plain listener; the upstream is harness/raw_upstream.py."""
import re

import pytest

from harness import clients

MIB = 1024 * 1024
ROUTES = ["https-h1", "https-h2", "tunnel-h1", "http"]


@pytest.fixture
def proxy(proxy_factory, raw_tls):
    return proxy_factory.start(https_listen=f"127.0.0.1:{raw_tls.port}")


def fetch(proxy, route, raw_tls, raw_plain, path, ca_cert, extra=()):
    if route == "http":
        return clients.curl(f"http://allowed.test:{raw_plain.port}{path}", proxy=f"http://127.0.0.1:{proxy.http_port}",
                            output="/dev/null", extra=extra)
    proto = ["--http2"] if route.endswith("h2") else ["--http1.1"]
    url = f"https://allowed.test:{raw_tls.port}{path}"
    if route.startswith("tunnel"):
        return clients.curl(url, proxy=proxy.tunnel_url, cacert=ca_cert, output="/dev/null", extra=[*proto, *extra])
    return clients.curl(url, resolve=f"allowed.test:{raw_tls.port}:127.0.0.1", cacert=ca_cert, output="/dev/null",
                        extra=[*proto, *extra])


def the_record(proxy, path_prefix):
    recs = proxy.wait_audit(1, predicate=lambda r: r["audit"]["path"].startswith(path_prefix))
    assert len(recs) == 1, recs
    return recs[0]


def relayed(rec, pattern):
    m = re.fullmatch(pattern, rec.get("error", ""))
    assert m, rec
    return int(m.group(1))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("route", ROUTES)
def test_upstream_cut_mid_body_is_an_error_with_the_bytes(proxy, raw_tls, raw_plain, ca_cert, route, framing):
    path = "/cut/1000000?" + ("of=5000000" if framing == "content-length" else "chunked=1")
    r = fetch(proxy, route, raw_tls, raw_plain, path, ca_cert)
    assert r.exit_code != 0 and r.size_download == 1000000, r  # the client sees the cut too
    rec = the_record(proxy, "/cut/")
    assert (rec["audit"]["action"], rec["level"]) == ("error", "ERROR"), rec
    assert rec["audit"]["status_code"] == 200, rec  # what the client was sent
    n = relayed(rec, r"reading response body: .+ after (\d+) response bytes")
    assert n == 1000000, rec


def test_h2_upstream_reset_mid_body_is_an_error_with_the_bytes(proxy_factory, h2_upstream, ca_cert):
    p = proxy_factory.start(https_listen=f"127.0.0.1:{h2_upstream.port}")
    port = h2_upstream.port
    r = clients.curl(f"https://allowed.test:{port}/reset", resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert,
                     output="/dev/null", extra=["--http2"])
    assert r.exit_code != 0, r
    rec = the_record(p, "/reset")
    assert rec["audit"]["action"] == "error" and rec["audit"]["status_code"] == 200, rec
    relayed(rec, r"upstream reset the stream mid-body \(http2 error 2\) after (\d+) response bytes")


@pytest.mark.parametrize("route", ROUTES)
def test_client_leaving_mid_download_is_audited_with_the_bytes(proxy, raw_tls, raw_plain, ca_cert, route):
    path = f"/paced/{16 * MIB}?rate={4 * MIB}"
    r = fetch(proxy, route, raw_tls, raw_plain, path, ca_cert, extra=["--max-time", "1"])
    assert r.exit_code == 28 and 0 < r.size_download < 16 * MIB, r
    rec = the_record(proxy, "/paced/")
    assert rec["audit"]["action"] == "client_cancel" and rec["audit"]["status_code"] == 200, rec
    n = relayed(rec, r"writing response body: .+ after (\d+) response bytes")
    assert r.size_download <= n < 16 * MIB, (r, rec)


@pytest.mark.parametrize("route", ROUTES)
def test_client_leaving_mid_upload_is_audited_with_the_bytes(proxy, raw_tls, raw_plain, ca_cert, route, tmp_path):
    body = tmp_path / "upload.bin"
    body.write_bytes(b"u" * (8 * MIB))
    r = fetch(proxy, route, raw_tls, raw_plain, "/sink", ca_cert,
              extra=["--data-binary", f"@{body}", "--limit-rate", "1M", "--max-time", "1"])
    assert r.exit_code == 28, r
    rec = the_record(proxy, "/sink")
    assert rec["audit"]["action"] == "client_cancel", rec
    n = relayed(rec, r"reading request body: .+ after (\d+) request bytes")
    assert 0 < n < 8 * MIB, rec


@pytest.mark.parametrize("route", ["https-h1", "http"])
def test_upstream_cut_mid_upload_is_an_error_with_the_bytes(proxy, raw_tls, raw_plain, ca_cert, route, tmp_path):
    body = tmp_path / "upload.bin"
    body.write_bytes(b"u" * (8 * MIB))
    r = fetch(proxy, route, raw_tls, raw_plain, "/sink-cut/100000", ca_cert, extra=["--data-binary", f"@{body}"])
    rec = the_record(proxy, "/sink-cut/")
    assert rec["audit"]["action"] == "error" and rec["audit"]["status_code"] == 502, (r, rec)
    n = relayed(rec, r"writing request body: .+ after (\d+) request bytes")
    assert 100000 <= n < 8 * MIB, rec


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_client_leaving_an_h2_origin_exchange_is_audited_with_the_bytes(proxy_factory, h2_upstream, ca_cert,
                                                                        direction, tmp_path):
    p = proxy_factory.start(https_listen=f"127.0.0.1:{h2_upstream.port}")
    port = h2_upstream.port
    kw = dict(resolve=f"allowed.test:{port}:127.0.0.1", cacert=ca_cert, output="/dev/null")
    if direction == "download":
        path, extra = f"/bytes/{1024 * MIB}", ["--limit-rate", "4M"]
    else:
        body = tmp_path / "upload.bin"
        body.write_bytes(b"u" * (8 * MIB))
        path, extra = "/sink", ["--data-binary", f"@{body}", "--limit-rate", "1M"]
    r = clients.curl(f"https://allowed.test:{port}{path}", extra=["--http2", "--max-time", "1", *extra], **kw)
    assert r.exit_code == 28, r
    rec = the_record(p, path)
    assert rec["audit"]["action"] == "client_cancel" and rec["audit"]["status_code"] == 200, rec
    if direction == "download":
        n = relayed(rec, r"writing response body: client closed the stream after (\d+) response bytes")
        assert r.size_download <= n < 1024 * MIB, (r, rec)
    else:
        n = relayed(rec, r"reading request body: client closed the stream after (\d+) request bytes")
        assert 0 < n < 8 * MIB, rec
