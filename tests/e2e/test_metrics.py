"""The metrics listener (Go serves only /healthz): /healthz as Go, /readyz, Prometheus
/metrics whose counters follow the traffic, Go's 404, and no harm from garbage on its port."""
import re
import socket
import time

import pytest

from harness import clients

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'                                  # metric name
    r'(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})?'  # optional labels
    r' (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')                            # value
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_exposition(text: str) -> dict:
    """{(name, frozenset(labels)): value}; asserts every line is a sample or # HELP / # TYPE,
    and that every sample belongs to a family announced by # TYPE."""
    assert text.endswith("\n"), text[-200:]
    samples, families = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            families[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid exposition line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in families or base in families, f"sample without # TYPE: {line!r}"
        key = (name, frozenset(LABEL.findall(labels)))
        assert key not in samples, f"duplicate sample: {line!r}"
        samples[key] = float(value)
    return samples


def scrape(proxy) -> dict:
    r = clients.curl(proxy.metrics_url + "/metrics")
    assert r.http_code == 200, r
    assert r.info.get("content_type") == "text/plain; version=0.0.4; charset=utf-8", r.info
    return parse_exposition(r.body.decode())


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_total(samples, action, code) -> float:
    return value(samples, "iron_proxy_requests_total", action=action, code=str(code))


def wait_for(predicate, proxy, timeout=5.0):
    """Scrapes until `predicate(samples)` holds (audit records, hence counts, land at the end of
    a request, a moment after the client saw the response)."""
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(proxy)
        if predicate(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "DELETE"])
def test_healthz_any_method(proxy_factory, method):
    p = proxy_factory.start()
    extra = ["-I"] if method == "HEAD" else []
    r = clients.curl(p.metrics_url + "/healthz", method=None if method == "HEAD" else method, extra=extra)
    assert r.http_code == 200, r
    if method != "HEAD":
        assert r.body == b"OK"


def test_head_then_get_on_one_connection(proxy_factory):
    """HEAD gets the headers only (Content-Length of the GET), so keep-alive stays in step."""
    p = proxy_factory.start()
    sock = socket.create_connection(p.addr("metrics"), timeout=5)
    try:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: m\r\n\r\nGET /healthz HTTP/1.1\r\nHost: m\r\n"
                     b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    finally:
        sock.close()
    first, second = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert b"Content-Length: 2\r\n" in first and first.endswith(b"\r\n\r\n"), data
    assert second.endswith(b"\r\n\r\nOK"), data


def test_readyz_and_unknown_path(proxy_factory):
    p = proxy_factory.start()
    r = clients.curl(p.metrics_url + "/readyz")
    assert (r.http_code, r.body) == (200, b"ready"), r
    r = clients.curl(p.metrics_url + "/nope")
    assert (r.http_code, r.body) == (404, b"404 page not found\n"), r


def test_metrics_startup_log_line(proxy_factory):
    p = proxy_factory.start()
    [line] = [rec for rec in p.log_records() if rec.get("msg") == "metrics server starting"]
    assert line["addr"] == "127.0.0.1:0"  # the configured text, as Go logs it
    assert line["bound_addr"] == "%s:%d" % p.addr("metrics")
    assert "not yet supported" not in p.stderr_text()


def test_counters_follow_traffic(proxy_factory, http_upstream):
    p = proxy_factory.start(domains=["allowed.test"])
    before = scrape(p)
    assert value(before, "process_open_fds") > 0
    assert value(before, "process_resident_memory_bytes") > 0
    assert value(before, "process_start_time_seconds") > 1.6e9

    proxy_url = "http://127.0.0.1:%d" % p.http_port
    ok = clients.curl(f"http://allowed.test:{http_upstream.port}/echo", proxy=proxy_url)
    assert ok.http_code == 200, ok
    denied = clients.curl(f"http://denied.test:{http_upstream.port}/", proxy=proxy_url)
    assert denied.http_code == 403, denied
    # Allowed, but nothing listens there: the dial fails (502, action error).
    failed = clients.curl("http://allowed.test:1/", proxy=proxy_url)
    assert failed.http_code == 502, failed

    after = wait_for(lambda s: value(s, "iron_proxy_audit_records_written_total")
                     >= value(before, "iron_proxy_audit_records_written_total") + 3, p)
    delta = lambda f, *a: f(after, *a) - f(before, *a)  # noqa: E731
    assert delta(requests_total, "allow", 200) == 1, after
    assert delta(requests_total, "reject", 403) == 1, after
    assert delta(requests_total, "error", 502) == 1, after
    assert delta(value, "iron_proxy_requests_rejected_total") == 0
    assert (value(after, "iron_proxy_requests_rejected_total", transform="allowlist")
            - value(before, "iron_proxy_requests_rejected_total", transform="allowlist")) == 1
    assert delta(value, "iron_proxy_audit_records_written_total") == 3
    assert (value(after, "iron_proxy_client_connections_total", listener="http")
            - value(before, "iron_proxy_client_connections_total", listener="http")) == 3

    # The histogram: cumulative buckets ending in +Inf == _count == the number of requests.
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items()
                      if k[0] == "iron_proxy_request_duration_seconds_bucket"), key=lambda t: t[0])
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == float("inf")
    assert buckets[-1][1] == value(after, "iron_proxy_request_duration_seconds_count") >= 3
    # One audit line per counted record.
    assert len(p.wait_audit(3)) == 3


def test_open_connections_gauge(proxy_factory):
    p = proxy_factory.start()
    sock = socket.create_connection(("127.0.0.1", p.tunnel_port))
    try:
        s = wait_for(lambda s: value(s, "iron_proxy_client_connections_open", listener="tunnel") == 1, p)
        assert value(s, "iron_proxy_client_connections_open", listener="tunnel") == 1
    finally:
        sock.close()
    s = wait_for(lambda s: value(s, "iron_proxy_client_connections_open", listener="tunnel") == 0, p)
    assert value(s, "iron_proxy_client_connections_open", listener="tunnel") == 0


def test_leaf_cache_metrics(proxy_factory, https_upstream, ca_cert):
    port = https_upstream.port
    p = proxy_factory.start(https_listen=f"127.0.0.1:{port}")
    for _ in range(2):
        r = clients.curl(f"https://allowed.test:{port}/echo", resolve=f"allowed.test:{port}:127.0.0.1",
                         cacert=ca_cert)
        assert r.http_code == 200, r
    s = scrape(p)
    assert value(s, "iron_proxy_leaf_cert_cache_misses_total") == 1
    assert value(s, "iron_proxy_leaf_cert_cache_hits_total") >= 1
    assert value(s, "iron_proxy_leaf_cert_cache_size") == 1


def test_garbage_on_metrics_port_does_not_hurt(proxy_factory, http_upstream):
    p = proxy_factory.start(domains=["allowed.test"])
    host, port = p.addr("metrics")
    # Garbage, an oversized head, and idle connections that never finish a request.
    bad = socket.create_connection((host, port), timeout=5)
    bad.sendall(b"\x16\x03\x01\x00\xff garbage \r\n\r\n")
    assert clients.read_head(bad).startswith(b"HTTP/1.1 400"), "garbage gets a 400"
    bad.close()
    big = socket.create_connection((host, port), timeout=5)
    big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    head = clients.read_head(big)
    assert head == b"" or head.startswith(b"HTTP/1.1 400"), head
    big.close()
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(80)]
    try:
        r = clients.curl(f"http://allowed.test:{http_upstream.port}/echo",
                         proxy="http://127.0.0.1:%d" % p.http_port)
        assert r.http_code == 200, r
    finally:
        for s in idle:
            s.close()
    # Once the idle ones are gone the metrics port serves again.
    r = clients.curl(p.metrics_url + "/healthz")
    assert r.http_code == 200 and r.body == b"OK", r
    assert p.alive()


def test_metrics_port_in_use_is_a_startup_error(proxy_factory):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        cfg = proxy_factory.config(extra={"metrics": {"listen": f"127.0.0.1:{port}"}})
        from harness.proxy import ProxyStartError
        with pytest.raises(ProxyStartError) as e:
            proxy_factory.start(config=cfg)
        assert "metrics.listen" in str(e.value) and "exited with code 1" in str(e.value)
    finally:
        holder.close()
