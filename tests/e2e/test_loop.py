"""Loops: a request whose upstream resolves to one of the proxy's own listening sockets (here the
test DNS's loop.test => 127.0.0.1, where every listener is) is answered 508 Loop Detected and
audited, instead of the proxy dialing itself (which, hop after hop, dials itself again).

Every wait is bounded: a proxy without the check recurses until its file descriptors run out, so
these tests give up after CURL_MAX seconds."""
import pytest

from harness import audit, clients

CURL_MAX = 8


def _assert_loop_record(rec, port, listener):
    a = audit.check_shape(rec)
    assert a["action"] == "error" and a["status_code"] == 508, rec
    assert rec.get("error") == f"loop detected: 127.0.0.1:{port} is this proxy's {listener} listener", rec


def _assert_still_serving(proxy, http_upstream):
    r = clients.curl(f"http://allowed.test:{http_upstream.port}/echo", proxy=f"http://127.0.0.1:{proxy.http_port}",
                     max_time=CURL_MAX)
    assert r.http_code == 200, r
    assert r.json()["server"] == "http-upstream"


@pytest.mark.parametrize("listener", ["http", "https", "tunnel", "metrics"])
def test_request_to_own_listener_is_508(proxy_factory, http_upstream, listener):
    proxy = proxy_factory.start()  # deny list without loopback; allowlist admits loop.test
    port = proxy.addr(listener)[1]
    r = clients.curl(f"http://loop.test:{port}/", proxy=f"http://127.0.0.1:{proxy.http_port}", max_time=CURL_MAX)
    assert r.http_code == 508, r
    assert r.body == b"loop detected\n", r
    [rec] = proxy.wait_audit(1)
    _assert_loop_record(rec, port, listener)
    assert rec["audit"]["host"] == f"loop.test:{port}"
    _assert_still_serving(proxy, http_upstream)


@pytest.mark.parametrize("how", ["connect", "socks5"])
def test_tunnel_to_its_own_port_is_508(proxy_factory, http_upstream, how):
    proxy = proxy_factory.start()
    port = proxy.tunnel_port
    if how == "connect":
        r = clients.curl(f"http://loop.test:{port}/", proxy=proxy.tunnel_url, extra=["--proxytunnel"],
                         max_time=CURL_MAX)
        assert r.http_connect == 200, r  # policy allows loop.test; the loop is found at the dial
    else:
        r = clients.curl(f"http://loop.test:{port}/", proxy=f"socks5h://127.0.0.1:{port}", max_time=CURL_MAX)
    assert r.http_code == 508, r
    recs = proxy.wait_audit(2)
    [conn] = audit.connect_records(recs)
    assert conn["audit"]["action"] == "allow", recs
    [inner] = audit.inner_records(recs)
    _assert_loop_record(inner, port, "tunnel")
    assert inner["tunnel"]["target"] == f"loop.test:{port}"
    _assert_still_serving(proxy, http_upstream)


@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_https_listener_to_its_own_port_is_508(proxy_factory, http_upstream, ca_cert, version):
    # The MITM'd request names loop.test:<the HTTPS listener's port>; HTTP/2 takes the h2 path.
    proxy = proxy_factory.start()
    port = proxy.https_port
    r = clients.curl(f"https://loop.test:{port}/", resolve=f"loop.test:{port}:127.0.0.1", cacert=ca_cert,
                     extra=[version], max_time=CURL_MAX)
    assert r.http_code == 508, r
    assert r.body == b"loop detected\n", r
    [rec] = proxy.wait_audit(1)
    _assert_loop_record(rec, port, "https")
    _assert_still_serving(proxy, http_upstream)


def test_sni_only_relay_to_itself_is_refused(proxy_factory, http_upstream, upstream_pki):
    # sni-only relays to SNI:443; with the HTTPS listener on 127.0.0.1:443, loop.test:443 is itself.
    if not clients.port_is_free("127.0.0.1", 443):
        pytest.skip("127.0.0.1:443 is taken")
    proxy = proxy_factory.start(https_listen="127.0.0.1:443", tls_extra={"mode": "sni-only"})
    r = clients.curl("https://loop.test/", resolve="loop.test:443:127.0.0.1", cacert=upstream_pki.ca_path,
                     max_time=CURL_MAX)
    assert r.exit_code != 0, r  # the tunnel is refused: the connection closes without a handshake
    [rec] = proxy.wait_audit(1)
    assert rec["audit"]["mode"] == "sni-only", rec
    _assert_loop_record(rec, 443, "https")
    _assert_still_serving(proxy, http_upstream)
