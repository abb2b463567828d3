"""Network namespaces for the sandbox-routing scenario (test_sandbox_netns.py, issue 4).

Everything here stays inside namespaces the test creates: addresses live on a veth pair and dummy
interfaces that exist only in those namespaces, so no packet can leave the machine.

* NetNS(name): `ip netns add` / `ip netns del`, `ip -n NAME ...`, commands run with `ip netns exec`
  (bounded by a timeout), per-namespace /etc/netns/NAME/resolv.conf (bind-mounted over
  /etc/resolv.conf by `ip netns exec`), and `entered()`: a context manager that moves the calling
  *thread* into the namespace with setns(2), so harness objects built inside it (UpstreamServer,
  TestDNSServer: their sockets are created in the namespace and stay there) and processes started
  inside it (ProxyProcess: fork inherits the thread's namespace) run in the namespace while the
  rest of the test process stays where it was.
* NetnsProxyProcess: the harness's ProxyProcess started inside a NetNS.
* netns_unavailable_reason(): why namespaces cannot be created here (the test skips on it), or None.
"""
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .paths import clean_env
from .proxy import READY_TIMEOUT, ProxyProcess

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")
CMD_TIMEOUT = 20

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


def _run(args, *, timeout=CMD_TIMEOUT, check=True, env=None, input=None):
    """Run a command, bounded; return CompletedProcess (text). check → AssertionError on failure."""
    try:
        cp = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                            env=clean_env(env), stdin=None if input is not None else subprocess.DEVNULL,
                            input=input)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(map(str, args))}: no exit within {timeout} s "
                             f"(stdout {e.stdout!r}, stderr {e.stderr!r})") from None
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {cp.returncode}:\n"
                             f"stdout: {cp.stdout}\nstderr: {cp.stderr}")
    return cp


def netns_unavailable_reason(probe_name=None):
    """None when this process can create, use and delete a network namespace; else the reason."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the suite as root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = probe_name or f"iron-e2e-probe-{os.getpid()}"
    try:
        cp = _run(["ip", "netns", "add", probe], check=False)
    except AssertionError as e:
        return f"`ip netns add` hangs: {e}"
    if cp.returncode != 0:
        return f"`ip netns add` failed (no CAP_SYS_ADMIN / no netns support?): {cp.stderr.strip()}"
    try:
        cp = _run(["ip", "netns", "exec", probe, "ip", "link", "set", "lo", "up"], check=False)
        if cp.returncode != 0:
            return f"`ip netns exec` failed: {cp.stderr.strip()}"
        try:
            fd = os.open(NETNS_RUN_DIR / probe, os.O_RDONLY)
        except OSError as e:
            return f"cannot open {NETNS_RUN_DIR / probe}: {e}"
        try:
            with _entered_fd(fd):
                pass
        except OSError as e:
            return f"setns(2) into a namespace failed: {e}"
        finally:
            os.close(fd)
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


@contextlib.contextmanager
def _entered_fd(fd):
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(own)  # must not fail: the thread would stay in the namespace
    finally:
        os.close(own)


def remove_stale(prefix="iron-e2e-"):
    """Delete namespaces named PREFIX…-<pid> left by an earlier run whose process is gone (e.g. a
    SIGKILLed pytest), and their /etc/netns directories. Only names this module makes match."""
    if not NETNS_RUN_DIR.is_dir():
        return []
    removed = []
    for entry in sorted(NETNS_RUN_DIR.iterdir())[:200]:
        m = re.fullmatch(re.escape(prefix) + r"[a-z]+-(\d+)", entry.name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        _run(["ip", "netns", "del", entry.name], check=False)
        _remove_etc_dir(entry.name)
        removed.append(entry.name)
    return removed


def _remove_etc_dir(name):
    d = NETNS_ETC_DIR / name
    if d.is_dir():
        shutil.rmtree(d, ignore_errors=True)
    try:
        NETNS_ETC_DIR.rmdir()  # only when empty (someone else may use /etc/netns)
    except OSError:
        pass


class NetNS:
    """A named network namespace (created by create(), removed by delete(); both idempotent)."""

    def __init__(self, name: str):
        assert len(name) <= 64 and re.fullmatch(r"[A-Za-z0-9_.-]+", name), name
        self.name = name
        self.created = False
        self.etc_dir = NETNS_ETC_DIR / name

    def __repr__(self):
        return f"NetNS({self.name!r})"

    # --- lifecycle ---------------------------------------------------------------------------
    def create(self):
        _run(["ip", "netns", "add", self.name])
        self.created = True
        self.ip("link", "set", "lo", "up")
        return self

    def pids(self):
        cp = _run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in cp.stdout.split() if p.isdigit()]

    def kill_all(self, grace=2.0):
        """SIGTERM, then SIGKILL, every process still inside this namespace (all were started by
        the test that made the namespace). Bounded."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [p for p in self.pids() if p != os.getpid()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
                time.sleep(0.05)

    def delete(self):
        if self.created:
            self.kill_all()
            cp = _run(["ip", "netns", "del", self.name], check=False)
            if cp.returncode == 0 or not (NETNS_RUN_DIR / self.name).exists():
                self.created = False
        _remove_etc_dir(self.name)

    def exists(self):
        return (NETNS_RUN_DIR / self.name).exists()

    # --- configuration -----------------------------------------------------------------------
    def ip(self, *args, check=True):
        """`ip -n NAME ARGS…`"""
        return _run(["ip", "-n", self.name, *map(str, args)], check=check)

    def write_resolv_conf(self, nameserver: str):
        """/etc/netns/NAME/resolv.conf: `ip netns exec NAME` bind-mounts it over /etc/resolv.conf."""
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        path = self.etc_dir / "resolv.conf"
        path.write_text(f"# written by the iron-proxy e2e suite (test_sandbox_netns.py)\n"
                        f"nameserver {nameserver}\noptions timeout:2 attempts:1\n")
        return path

    def nft(self, ruleset: str):
        """Load an nftables ruleset (nft -f -) inside the namespace."""
        return self.run(["nft", "-f", "-"], input=ruleset)

    # --- running things ----------------------------------------------------------------------
    def run(self, args, *, timeout=CMD_TIMEOUT, check=True, env=None, input=None):
        """`ip netns exec NAME ARGS…`, bounded, with the suite's clean environment."""
        return _run(["ip", "netns", "exec", self.name, *map(str, args)], timeout=timeout,
                    check=check, env=env, input=input)

    @contextlib.contextmanager
    def entered(self):
        """Move the calling thread into this namespace for the duration of the block."""
        fd = os.open(NETNS_RUN_DIR / self.name, os.O_RDONLY)
        try:
            with _entered_fd(fd):
                yield self
        finally:
            os.close(fd)


def veth_pair(ns_a: NetNS, if_a: str, addr_a: str, ns_b: NetNS, if_b: str, addr_b: str):
    """A veth pair with one end in each namespace (names and addresses exist only there)."""
    ns_a.ip("link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b.name)
    ns_a.ip("addr", "add", addr_a, "dev", if_a)
    ns_b.ip("addr", "add", addr_b, "dev", if_b)
    ns_a.ip("link", "set", if_a, "up")
    ns_b.ip("link", "set", if_b, "up")


def local_addresses(ns: NetNS, *addrs: str, ifname="up0"):
    """Extra local addresses in `ns` (the "internet" side: upstreams, an outside resolver): on a
    dummy interface when the kernel has one, else on the namespace's own loopback (kernels without
    CONFIG_DUMMY; a /32 on lo is still reachable from other interfaces). Returns the device used."""
    cp = ns.ip("link", "add", ifname, "type", "dummy", check=False)
    dev = ifname if cp.returncode == 0 else "lo"
    for a in addrs:
        ns.ip("addr", "add", a, "dev", dev)
    ns.ip("link", "set", dev, "up")
    return dev


class NetnsProxyProcess(ProxyProcess):
    """ProxyProcess whose binary runs inside `netns` (config, logs and audit file stay on disk as
    usual; stop() and the suite's process-group bookkeeping are unchanged)."""

    def __init__(self, netns: NetNS, *args, **kw):
        self.netns = netns
        super().__init__(*args, **kw)

    def start(self, wait_ready=True, timeout=READY_TIMEOUT):
        with self.netns.entered():
            return super().start(wait_ready=wait_ready, timeout=timeout)
