"""Bodies stream: a 100 MiB download through the tunnel arrives exactly and the proxy's resident
memory stays flat (nothing is buffered unless a transform asks)."""
import time

import pytest

from harness import audit, clients
from harness.rss import RssSampler

SIZE = 100 * 1024 * 1024
MAX_GROWTH_KIB = 16 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100mib_download_through_tunnel(proxy, https_upstream, ca_cert, chunked):
    port = https_upstream.port
    url = f"https://allowed.test:{port}/bytes/"
    # Warm up: leaf minted, upstream connection, buffers allocated.
    warm = clients.curl(url + "1048576", proxy=proxy.tunnel_url, cacert=ca_cert, output="/dev/null")
    assert warm.http_code == 200 and warm.size_download == 1048576, warm
    time.sleep(0.2)
    baseline = proxy.rss_kib()

    sampler = RssSampler(proxy)
    sampler.start()
    try:
        r = clients.curl(url + str(SIZE) + ("?chunked=1" if chunked else ""),
                         proxy=proxy.tunnel_url, cacert=ca_cert, output="/dev/null", max_time=90)
    finally:
        sampler.stop()
    assert r.exit_code == 0, r
    assert r.http_code == 200, r
    assert r.size_download == SIZE, r
    assert sampler.samples, "no RSS samples taken"
    growth = max(sampler.samples) - baseline
    assert growth < MAX_GROWTH_KIB, (
        f"proxy RSS grew by {growth} KiB (baseline {baseline} KiB, max {max(sampler.samples)} KiB)")

    recs = proxy.wait_audit(4)
    inner = [x for x in audit.inner_records(recs) if x["audit"]["path"] == f"/bytes/{SIZE}"]
    assert len(inner) == 1
    assert inner[0]["audit"]["status_code"] == 200


@pytest.mark.slow
def test_100mib_upload_through_https_listener(proxy, https_upstream, ca_cert, tmp_path):
    """The request body streams too: a 100 MiB upload arrives whole and RSS stays flat."""
    port = https_upstream.port
    big = tmp_path / "upload.bin"
    with open(big, "wb") as f:
        f.truncate(SIZE)  # sparse file of zeros
    warm = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                        cacert=ca_cert)
    assert warm.http_code == 200, warm
    baseline = proxy.rss_kib()
    sampler = RssSampler(proxy)
    sampler.start()
    try:
        r = clients.curl(f"https://allowed.test:{port}/sink", resolve=f"allowed.test:{port}:127.0.0.1",
                         cacert=ca_cert, method="POST", extra=["-T", str(big)], max_time=90,
                         headers=["Content-Type: application/octet-stream", "Expect:"])
    finally:
        sampler.stop()
    assert r.http_code == 200, r
    [rec] = https_upstream.requests_for("/sink")
    assert rec["body_length"] == SIZE
    growth = max(sampler.samples) - baseline
    assert growth < MAX_GROWTH_KIB, f"proxy RSS grew by {growth} KiB during a 100 MiB upload"
