"""Fixtures for the iron-proxy end-to-end suite. See docs/testing.md."""
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import certs  # noqa: E402
from harness.configs import TestBed, make_config  # noqa: E402
from harness.dns_server import TestDNSServer  # noqa: E402
from harness.paths import BINARY, MISSING_BINARY_MESSAGE  # noqa: E402
from harness.proxy import ProxyProcess, kill_all_groups, run_binary, sanitizer_reports  # noqa: E402
from harness.h2_upstream import H2UpstreamServer, h2_server_context  # noqa: E402
from harness.raw_upstream import RawUpstream  # noqa: E402
from harness.upstream import UpstreamServer, bind_paired, server_tls_context  # noqa: E402

DEFAULT_TEST_TIMEOUT = int(os.environ.get("IRON_E2E_TEST_TIMEOUT", "120"))


# --- process hygiene and per-test timeout ---------------------------------------------------------

def pytest_configure(config):
    # Never let proxy env vars of the machine leak into Python clients (requests, urllib).
    for k in list(os.environ):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del os.environ[k]
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): per-test limit (conftest's fallback)")

    # SIGTERM (e.g. CI cancelling) → KeyboardInterrupt, so fixtures tear down; atexit kills the rest.
    def _on_term(signum, frame):
        kill_all_groups()
        raise KeyboardInterrupt("SIGTERM")

    try:
        signal.signal(signal.SIGTERM, _on_term)
    except ValueError:
        pass


class _TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Per-test time limit when pytest-timeout is not installed (SIGALRM in the main thread)."""
    if item.config.pluginmanager.hasplugin("timeout") or not hasattr(signal, "SIGALRM"):
        yield
        return
    limit = DEFAULT_TEST_TIMEOUT
    marker = item.get_closest_marker("timeout")
    if marker and marker.args:
        limit = int(marker.args[0])

    def _alarm(signum, frame):
        raise _TestTimeout(f"test exceeded {limit} s (fallback timeout in conftest.py)")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the stderr tail of every proxy the test started."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in getattr(item, "_iron_proxies", []):
            text = p.stderr_text()
            rep.sections.append((f"iron-proxy {p.name} stderr (tail)", text[-6000:] or "(empty)"))


@pytest.fixture(autouse=True)
def no_sanitizer_report():
    """Fails the test if a proxy it ran printed an ASan/LSan/UBSan report (a sanitizer build, e.g.
    IRON_PROXY_BIN=build-asan/iron-proxy). Autouse fixtures are set up first, so this check runs
    after every other fixture's teardown has stopped the proxies and read their last lines."""
    before = len(sanitizer_reports())
    yield
    found = sanitizer_reports()[before:]
    if found:
        pytest.fail("sanitizer report in iron-proxy output:\n" + "\n".join(found[:20]), pytrace=False)


# --- the binary -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def iron_binary():
    """Path of the binary under test. Fails every test that needs it, fast and clearly, when absent."""
    if not BINARY.exists():
        pytest.fail(MISSING_BINARY_MESSAGE, pytrace=False)
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"{BINARY} is not executable", pytrace=False)
    return BINARY


# --- certificates -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def proxy_ca(iron_binary, tmp_path_factory):
    """The CA the proxy signs leaves with: made by the binary's generate-ca (ECDSA P-256 for speed),
    or by python3-cryptography if generate-ca fails (test_generate_ca.py tests the command itself)."""
    outdir = tmp_path_factory.mktemp("proxy-ca")
    cp = None
    try:
        cp = run_binary(["generate-ca", "-outdir", str(outdir), "-alg", "ecdsa-p256",
                         "-name", "iron-proxy e2e CA"], timeout=30)
    except AssertionError:
        pass
    crt, key = outdir / "ca.crt", outdir / "ca.key"
    if cp is None or cp.returncode != 0 or not crt.exists() or not key.exists():
        fallback = tmp_path_factory.mktemp("proxy-ca-fallback")
        pair, _ = certs.make_ca(fallback, "iron-proxy e2e CA (fallback)")
        crt, key = pair.cert_path, pair.key_path
        sys.stderr.write("warning: generate-ca failed; using a python-made proxy CA\n")
    return crt, key


class UpstreamPKI:
    def __init__(self, outdir: Path):
        self.ca, self.ca_key = certs.make_ca(outdir, "iron-proxy e2e upstream CA", "upstream-ca")
        self.server = certs.make_server_cert(outdir, self.ca, self.ca_key, "upstream-server")
        self.ca_path = self.ca.cert_path

    def server_context(self):
        return server_tls_context(self.server.cert_path, self.server.key_path)


@pytest.fixture(scope="session")
def upstream_pki(tmp_path_factory):
    """A separate CA for the upstream servers and a server cert for the *.test names."""
    return UpstreamPKI(tmp_path_factory.mktemp("upstream-pki"))


# --- DNS ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dns_server():
    """Test DNS on 127.0.0.1:<port>/UDP(+TCP): *.test names → 127.0.0.2, loop.test → 127.0.0.1."""
    server = TestDNSServer().start()
    yield server
    server.stop()


# --- upstreams ------------------------------------------------------------------------------------

@contextlib.contextmanager
def started_servers():
    """keep(server) starts a server and returns it; every kept server is stopped on exit."""
    servers = []

    def keep(srv):
        srv.start()
        servers.append(srv)
        return srv

    try:
        yield keep
    finally:
        for srv in servers:
            srv.stop()


@pytest.fixture
def upstream_factory(upstream_pki):
    """make(host="127.0.0.2", port=0, tls=True, name=..., pair_with="127.0.0.1") → started server.
    With pair_with, the port is chosen so that pair_with:port is free too (for the HTTPS listener,
    which must listen on the same port number the upstream uses)."""
    def make(host="127.0.0.2", port=0, tls=True, name=None, pair_with=None):
        ctx = upstream_pki.server_context() if tls else None
        name = name or ("https-upstream" if tls else "http-upstream")
        return keep(bind_paired(lambda p: UpstreamServer(host, p, ctx, name), pair_with, port))

    with started_servers() as keep:
        yield make


@pytest.fixture
def https_upstream(upstream_factory):
    """TLS upstream on 127.0.0.2:P, where 127.0.0.1:P is free for the proxy's HTTPS listener."""
    return upstream_factory(tls=True, pair_with="127.0.0.1")


@pytest.fixture
def h2_upstream_factory(upstream_pki):
    """make(host="127.0.0.2", port=0, name=..., pair_with="127.0.0.1", max_streams=1000) → a started
    HTTP/2 upstream (harness/h2_upstream.py: TLS with ALPN h2 only; it announces max_streams as its
    SETTINGS_MAX_CONCURRENT_STREAMS)."""
    def make(host="127.0.0.2", port=0, name="h2-upstream", pair_with="127.0.0.1", max_streams=1000):
        ctx = h2_server_context(upstream_pki.server.cert_path, upstream_pki.server.key_path)
        return keep(bind_paired(lambda p: H2UpstreamServer(host, p, ctx, name, max_streams=max_streams),
                                pair_with, port))

    with started_servers() as keep:
        yield make


@pytest.fixture
def h2_upstream(h2_upstream_factory):
    """HTTP/2 upstream on 127.0.0.2:P (ALPN h2 only), where 127.0.0.1:P is free for the proxy."""
    return h2_upstream_factory()


@pytest.fixture
def http_upstream(upstream_factory):
    """Plain HTTP upstream on 127.0.0.2:<port>."""
    return upstream_factory(tls=False)


# --- the proxy ------------------------------------------------------------------------------------

@pytest.fixture
def bed(proxy_ca, upstream_pki, dns_server, tmp_path):
    return TestBed(workdir=tmp_path, dns_addr=dns_server.addr, ca_cert=proxy_ca[0],
                   ca_key=proxy_ca[1], upstream_ca=upstream_pki.ca_path)


class ProxyFactory:
    """start(**make_config kwargs) or start(config=dict) → a ready ProxyProcess."""

    def __init__(self, bed, node):
        self.bed = bed
        self.node = node
        self.started = []
        node._iron_proxies = self.started

    def config(self, **kw):
        kw.setdefault("name", f"proxy{len(self.started)}")
        return make_config(self.bed, **kw)

    def start(self, config=None, *, wait_ready=True, args=None, env=None, config_text=None, **kw):
        name = kw.pop("name", None) or f"proxy{len(self.started)}"
        if config is None and config_text is None:
            config = make_config(self.bed, name=name, **kw)
        p = ProxyProcess(self.bed.workdir, config, args=args, env=env, config_text=config_text,
                         name=name)
        self.started.append(p)
        p.start(wait_ready=wait_ready)
        return p

    def stop_all(self):
        for p in self.started:
            p.stop()


@pytest.fixture
def proxy_factory(bed, request):
    factory = ProxyFactory(bed, request.node)
    yield factory
    factory.stop_all()


@pytest.fixture
def proxy(proxy_factory, https_upstream):
    """The usual proxy: http/tunnel on port 0, HTTPS on 127.0.0.1:<https_upstream.port>,
    allowlist [allowed.test, loop.test], upstreams on 127.0.0.2 reachable."""
    return proxy_factory.start(https_listen=f"127.0.0.1:{https_upstream.port}")


@pytest.fixture
def ca_cert(proxy_ca):
    return proxy_ca[0]


# --- scripted upstreams (harness/raw_upstream.py): paced, cut and 101 responses --------------------

@pytest.fixture
def raw_tls(upstream_pki):
    """TLS upstream on 127.0.0.2:P (127.0.0.1:P free for the HTTPS listener)."""
    srv = bind_paired(lambda p: RawUpstream("127.0.0.2", p, upstream_pki.server_context()), "127.0.0.1")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def raw_plain():
    """Plain-HTTP upstream on 127.0.0.2, a free port."""
    srv = RawUpstream("127.0.0.2", 0, None).start()
    yield srv
    srv.stop()
