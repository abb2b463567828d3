"""systemd readiness (packaging/systemd/iron-proxy.service is Type=notify): the proxy sends READY=1
to $NOTIFY_SOCKET once every listener accepts, and STOPPING=1 when SIGTERM starts the drain, as one
datagram each the way sd_notify(3) writes them (no libsystemd). The test plays systemd's part: it
binds the notification socket (a path, or an abstract "@name") and reads what arrives, with the
sender's credentials (SO_PASSCRED), because systemd only accepts the main process's messages."""
import os
import socket
import struct
import time
import urllib.request

import pytest

SCM_CREDENTIALS = 2  # linux/socket.h; Python exposes SO_PASSCRED but not this constant


def notify_socket(path_or_abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path_or_abstract)
    return s


def receive(sock, timeout):
    """(text, sender pid) of the next datagram, or (None, None) after `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        return None, None
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("iII", payload[:12])
    return data.decode(), pid


def accepts(addr):
    with socket.create_connection(addr, timeout=2):
        return True


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_once_listening_then_stopping_on_sigterm(proxy_factory, tmp_path, kind):
    if kind == "path":
        bind_to = str(tmp_path / "notify.sock")
        env_value = bind_to
    else:
        name = f"iron-proxy-e2e-{os.getpid()}-{time.monotonic_ns()}"
        bind_to = "\0" + name
        env_value = "@" + name
    sock = notify_socket(bind_to)
    try:
        p = proxy_factory.start(env={"NOTIFY_SOCKET": env_value}, wait_ready=False,
                                tunnel_listen="127.0.0.1:0")
        text, sender = receive(sock, 20)
        assert text == "READY=1", (text, p.stderr_text()[-2000:])
        assert sender == p.pid, "systemd (NotifyAccess=main) only takes the main process's messages"
        # READY=1 came after every listener was listening: each one accepts now.
        p.wait_ready()
        for listener in ("http", "https", "tunnel"):
            assert accepts(p.addr(listener)), listener
        assert urllib.request.urlopen(p.metrics_url + "/readyz", timeout=2).status == 200
        text, _ = receive(sock, 0.5)
        assert text is None, f"only one message while running, got {text!r}"

        code = p.stop()  # SIGTERM: the drain begins
        assert code == 0
        text, sender = receive(sock, 5)
        assert text == "STOPPING=1" and sender == p.pid, text
    finally:
        sock.close()


def test_unreachable_notify_socket_does_not_stop_the_proxy(proxy_factory, tmp_path):
    """A NOTIFY_SOCKET nobody listens on (the service manager went away) costs a warning, nothing
    else: the proxy starts, serves and stops as usual."""
    p = proxy_factory.start(env={"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert accepts(p.addr("http"))
    assert p.wait_stderr("systemd notification failed")
    assert p.stop() == 0
