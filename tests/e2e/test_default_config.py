"""Running with no -config: the embedded default (loopback 8080/8443/8888, CA created in the
state dir, allowlist of example.com only). Skipped when those ports are taken on this machine."""
import os
import stat

import pytest

from harness import clients
from harness.proxy import ProxyProcess

DEFAULT_PORTS = {"http": 8080, "https": 8443, "tunnel": 8888}
METRICS_PORT = 9090  # in the default config too; must be free if metrics get implemented


@pytest.fixture
def default_ports_free():
    busy = [p for p in (*DEFAULT_PORTS.values(), METRICS_PORT)
            if not clients.port_is_free("127.0.0.1", p)]
    if busy:
        pytest.skip(f"default ports in use on this machine: {busy}")


def _start(proxy_factory, env, name):
    p = ProxyProcess(proxy_factory.bed.workdir, None, args=[], env=env, name=name)
    proxy_factory.started.append(p)
    p.start()
    return p


def test_embedded_default(iron_binary, proxy_factory, default_ports_free, tmp_path):
    state = tmp_path / "state"
    env = {"IRON_STATE_DIR": str(state), "HOME": str(tmp_path / "home")}
    p = _start(proxy_factory, env, "default")
    for listener, port in DEFAULT_PORTS.items():
        assert p.addr(listener) == ("127.0.0.1", port), p.addrs

    # The banner (printed after "ready") tells a person how to try it.
    # Wait for the banner's curl line itself: the CA path also appears earlier, in a log line.
    assert p.wait_stderr("--cacert " + str(state / "ca.crt")), p.stderr_text()
    text = p.stderr_text()
    assert "curl" in text and "127.0.0.1:8888" in text, text

    crt, key = state / "ca.crt", state / "ca.key"
    assert crt.exists() and key.exists()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600

    sock, status, head = clients.connect_tunnel(("127.0.0.1", 8888), "denied.test:443")
    sock.close()
    assert status == 403, head
    sock, status, head = clients.connect_tunnel(("127.0.0.1", 8888), "www.example.com:443")
    sock.close()
    assert status == 200, head

    # A second start reuses the CA instead of making a new one.
    first = crt.read_bytes()
    assert p.stop() == 0
    p2 = _start(proxy_factory, env, "default2")
    assert crt.read_bytes() == first
    p2.stop()


def test_default_state_dir_follows_xdg(iron_binary, proxy_factory, default_ports_free, tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    p = _start(proxy_factory, env, "default-xdg")
    p.stop()
    assert (tmp_path / "xdg" / "iron-proxy" / "ca.crt").exists()


def test_default_state_dir_falls_back_to_home(iron_binary, proxy_factory, default_ports_free,
                                              tmp_path):
    env = {"HOME": str(tmp_path / "home")}
    p = ProxyProcess(proxy_factory.bed.workdir, None, args=[], env=env, name="default-home")
    p.env.pop("XDG_STATE_HOME", None)
    proxy_factory.started.append(p)
    p.start()
    p.stop()
    assert (tmp_path / "home" / ".local" / "state" / "iron-proxy" / "ca.crt").exists()
