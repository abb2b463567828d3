"""Parent proxies for upstream chaining tests: a real Squid (Debian's squid-openssl) and a small
SOCKS5 server that records what it was asked.

Squid runs in the foreground (-N) with a generated squid.conf on a loopback port, its logs, pid and
hosts file in a temporary directory; no cache. Names the tests use resolve through that hosts file
(the test origins live on 127.0.0.2). As root, Squid drops to its `proxy` user, so the directory is
made writable for it."""
import os
import select
import shutil
import socket
import struct
import subprocess
import threading
import tempfile
import time
from pathlib import Path

SQUID = shutil.which("squid") or "/usr/sbin/squid"


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(host, port, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class SquidParent:
    """squid -N on 127.0.0.1:<port>. `users` {name: password} turns on basic authentication
    (basic_ncsa_auth); `deny_connect` makes it answer 403 to every CONNECT. `tls` (cert_path,
    key_path) makes it an https:// parent: an https_port, so clients speak TLS to Squid itself."""

    def __init__(self, hosts: dict, users=None, deny_connect=False, tls=None):
        # Not under pytest's tmp_path: its 0700 parents keep Squid's `proxy` user out.
        self.dir = Path(tempfile.mkdtemp(prefix="iron-e2e-squid-"))
        self.port = free_port()
        self.hosts = hosts
        self.users = users or {}
        self.deny_connect = deny_connect
        self.tls = tls
        self.proc = None

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _conf(self) -> str:
        d = self.dir
        listen = (f"https_port 127.0.0.1:{self.port} tls-cert={d}/parent.crt tls-key={d}/parent.key"
                  if self.tls else f"http_port 127.0.0.1:{self.port}")
        lines = [
            listen,
            f"pid_filename {d}/squid.pid",
            f"cache_log {d}/cache.log",
            "logformat iron %rm %ru %>Hs",
            f"access_log stdio:{d}/access.log iron",
            f"hosts_file {d}/hosts",
            f"coredump_dir {d}",
            "strip_query_terms off",
            "cache deny all",
            "cache_mem 8 MB",
            "netdb_filename none",
            "shutdown_lifetime 0 seconds",
            "visible_hostname iron-e2e-parent",
            "dns_nameservers 127.0.0.1",
            "dns_timeout 2 seconds",
        ]
        if os.geteuid() == 0:
            lines.append("cache_effective_user proxy")
        if self.deny_connect:
            lines.append("http_access deny CONNECT")
        if self.users:
            lines += [f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {d}/passwd",
                      "auth_param basic realm iron-e2e",
                      "acl authed proxy_auth REQUIRED",
                      "http_access allow authed",
                      "http_access deny all"]
        else:
            lines.append("http_access allow all")
        return "\n".join(lines) + "\n"

    def start(self):
        d = self.dir
        (d / "hosts").write_text("".join(f"{ip} {name}\n" for name, ip in self.hosts.items()))
        if self.users:
            entries = []
            for user, password in self.users.items():
                hashed = subprocess.run(["openssl", "passwd", "-1", password], capture_output=True,
                                        text=True, check=True).stdout.strip()
                entries.append(f"{user}:{hashed}\n")
            (d / "passwd").write_text("".join(entries))
        if self.tls:
            shutil.copyfile(self.tls[0], d / "parent.crt")
            shutil.copyfile(self.tls[1], d / "parent.key")
        (d / "squid.conf").write_text(self._conf())
        for name in ("access.log", "cache.log"):
            (d / name).touch()
        if os.geteuid() == 0:
            for p in [d, *d.iterdir()]:
                os.chmod(p, 0o777 if p.is_dir() else 0o666)
        self.proc = subprocess.Popen([SQUID, "-N", "-f", str(d / "squid.conf")], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_listening("127.0.0.1", self.port):
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(5)
            why = self.log_text()
            self.stop()
            raise RuntimeError("squid did not start: " + why)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self) -> str:
        out = ""
        if self.proc and self.proc.stdout and self.proc.poll() is not None:
            out += self.proc.stdout.read().decode("utf-8", "replace")
        p = self.dir / "cache.log"
        return out + (p.read_text(errors="replace") if p.exists() else "")

    def access_lines(self, settle=0.5) -> list[str]:
        """`<method> <url> <status>` per request Squid logged (it writes the line when the
        request ends, so give it a moment)."""
        time.sleep(settle)
        p = self.dir / "access.log"
        lines = [line.strip() for line in p.read_text(errors="replace").splitlines()]
        return [line for line in lines if line and not line.startswith("- ")]  # "- ": start-up probes


class Socks5Parent:
    """A SOCKS5 server (RFC 1928 CONNECT, RFC 1929 user/password when `users` is given) on
    127.0.0.1:<port>. `requests` records (atyp, host, port) of every CONNECT; `auths` records
    (user, password) tried. `refuse_with` answers every CONNECT with that reply code (`refuse_first_with`: only the first). `resolve`
    maps names it is asked for to addresses (the test origins are on 127.0.0.2)."""

    def __init__(self, users=None, resolve=None, refuse_with=None, refuse_first_with=None):
        self.users = users or {}
        self.resolve = resolve or {}
        self.refuse_with = refuse_with
        self.refuse_first_with = refuse_first_with  # only the first CONNECT gets this reply code
        self.requests = []
        self.auths = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []

    def url(self, scheme="socks5h", userinfo=""):
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def _greet(self, conn) -> bool:
        ver, n = self._read(conn, 2)
        methods = self._read(conn, n)
        if ver != 5:
            return False
        if not self.users:
            conn.sendall(b"\x05\x00")
            return True
        if 2 not in methods:
            conn.sendall(b"\x05\xff")
            return False
        conn.sendall(b"\x05\x02")
        _, ulen = self._read(conn, 2)
        user = self._read(conn, ulen).decode()
        (plen,) = self._read(conn, 1)
        password = self._read(conn, plen).decode()
        with self.lock:
            self.auths.append((user, password))
        ok = self.users.get(user) == password
        conn.sendall(b"\x01\x00" if ok else b"\x01\x01")
        return ok

    def _target(self, conn):
        ver, cmd, _, atyp = self._read(conn, 4)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, self._read(conn, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, self._read(conn, 16))
        else:
            (n,) = self._read(conn, 1)
            host = self._read(conn, n).decode()
        (port,) = struct.unpack("!H", self._read(conn, 2))
        return atyp, host, port

    def _serve(self, conn):
        upstream = None
        try:
            conn.settimeout(10)
            if not self._greet(conn):
                return
            atyp, host, port = self._target(conn)
            with self.lock:
                self.requests.append((atyp, host, port))
            with self.lock:
                refusal = self.refuse_with
                if self.refuse_first_with is not None:
                    refusal, self.refuse_first_with = self.refuse_first_with, None
            if refusal is not None:
                conn.sendall(bytes([5, refusal, 0, 1, 0, 0, 0, 0, 0, 0]))
                return
            try:
                upstream = socket.create_connection((self.resolve.get(host, host), port), timeout=10)
            except OSError:
                conn.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
                return
            conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
            self._relay(conn, upstream)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            for s in (conn, upstream):
                if s:
                    s.close()

    def _relay(self, a, b, limit=60.0):
        deadline = time.monotonic() + limit
        a.settimeout(None)
        b.settimeout(None)
        while time.monotonic() < deadline and not self.stopping:
            ready, _, _ = select.select([a, b], [], [], 0.5)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
