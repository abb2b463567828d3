"""Running the iron-proxy binary under test.

ProxyProcess writes a YAML config, starts the binary in its own process group, reads its JSON log
lines from stderr in a thread, waits (bounded) for "iron-proxy ready", and learns the bound
addresses from the "... proxy starting" lines. stop() sends SIGTERM, then SIGKILL after 5 s.
"""
import atexit
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from . import yamlgen
from .paths import BINARY, clean_env

READY_TIMEOUT = 10.0
STOP_GRACE = 5.0

# Every process group we started, so an interrupted run still kills them (atexit / SIGTERM).
_LIVE_GROUPS: set[int] = set()
_LIVE_LOCK = threading.Lock()


def _register(pid):
    with _LIVE_LOCK:
        _LIVE_GROUPS.add(pid)


def _unregister(pid):
    with _LIVE_LOCK:
        _LIVE_GROUPS.discard(pid)


def kill_all_groups():
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS)
        _LIVE_GROUPS.clear()
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


atexit.register(kill_all_groups)


class ProxyStartError(AssertionError):
    pass


# Reports of a sanitizer build (scripts/test.sh's ASan + UBSan phase runs the suite against one):
# ASan/LSan errors, and UBSan's "file:line:col: runtime error: …" (which does not stop the process
# unless UBSAN_OPTIONS says so). Any line of a proxy's output that matches is recorded here, and
# conftest.py fails the test during which it appeared, even when the test itself passed.
_SANITIZER_LINE = re.compile(
    r"==\d+==\s*ERROR: \w+Sanitizer|^SUMMARY: \w+Sanitizer|:\d+:\d+: runtime error: ")
_SANITIZER_REPORTS: list[str] = []


def is_sanitizer_line(line: str) -> bool:
    return _SANITIZER_LINE.search(line) is not None


def note_sanitizer_lines(who: str, text: str):
    for line in text.splitlines():
        if is_sanitizer_line(line):
            with _LIVE_LOCK:
                _SANITIZER_REPORTS.append(f"{who}: {line.strip()}")


def sanitizer_reports() -> list[str]:
    with _LIVE_LOCK:
        return list(_SANITIZER_REPORTS)


def parse_json_lines(lines):
    out = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


class ProxyProcess:
    """One running iron-proxy. Use start_proxy() / the `proxy_factory` fixture to make one."""

    def __init__(self, workdir: Path, config: dict | None, *, args=None, env=None,
                 config_text: str | None = None, name="proxy"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config = config
        self.config_path = None
        if config is not None or config_text is not None:
            self.config_path = self.workdir / f"{name}.yaml"
            self.config_path.write_text(config_text if config_text is not None else yamlgen.dump(config))
        self.audit_path = None
        if config and isinstance(config.get("log"), dict) and config["log"].get("audit_path"):
            self.audit_path = Path(config["log"]["audit_path"])
        self.args = list(args) if args is not None else (
            ["-config", str(self.config_path)] if self.config_path else [])
        self.env = clean_env(env)
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._lines_cv = threading.Condition(self._lines_lock)
        self.proc: subprocess.Popen | None = None
        self.addrs: dict[str, tuple[str, int]] = {}
        self.returncode = None
        self._log_file = self.workdir / f"{name}.stderr.log"
        self._readers = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, wait_ready=True, timeout=READY_TIMEOUT):
        if not BINARY.exists():
            raise ProxyStartError("build/iron-proxy not found: run scripts/build.sh")
        self.proc = subprocess.Popen(
            [str(BINARY), *self.args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env, cwd=str(self.workdir), start_new_session=True,
        )
        _register(self.proc.pid)
        for stream, sink in ((self.proc.stderr, self.stderr_lines), (self.proc.stdout, self.stdout_lines)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._readers.append(t)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def _pump(self, stream, sink):
        with open(self._log_file, "a", encoding="utf-8", errors="replace") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if sink is self.stderr_lines:
                    log.write(line + "\n")
                    log.flush()
                note_sanitizer_lines(f"iron-proxy {self.name} ({self._log_file})", line)
                with self._lines_cv:
                    sink.append(line)
                    self._lines_cv.notify_all()
        stream.close()

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._lines_cv:
            while True:
                for rec in parse_json_lines(self.stderr_lines):
                    if rec.get("msg") == "iron-proxy ready":
                        self._learn_addrs()
                        return self
                if self.proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lines_cv.wait(min(left, 0.1))
        code = self.proc.poll()
        self.stop()
        what = f"exited with code {code}" if code is not None else f"not ready within {timeout:.0f} s"
        raise ProxyStartError(f"iron-proxy {what}; stderr:\n{self.stderr_text()[-4000:]}")

    def _learn_addrs(self):
        for rec in parse_json_lines(self.stderr_lines):
            msg = rec.get("msg", "")
            m = re.fullmatch(r"(http|https|tunnel) proxy starting.*", msg)
            if m and rec.get("addr"):
                self.addrs[m.group(1)] = split_addr(rec["addr"])
            # The metrics line's addr is the configured text (as Go logs it); bound_addr is real.
            m = re.fullmatch(r"(metrics|management) server starting", msg)
            if m and (rec.get("bound_addr") or rec.get("addr")):
                self.addrs[m.group(1)] = split_addr(rec.get("bound_addr") or rec["addr"])

    def stop(self):
        """SIGTERM the process group, SIGKILL after 5 s. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        else:
            # The leader is gone; make sure nothing it left in its group survives.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _unregister(self.proc.pid)
        for t in self._readers:
            t.join(timeout=2)
        self.returncode = self.proc.returncode
        return self.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    # --- addresses ---------------------------------------------------------------------------
    def addr(self, listener) -> tuple[str, int]:
        if listener not in self.addrs:
            raise AssertionError(
                f"no '{listener} proxy starting' line with an addr in the proxy log:\n"
                + self.stderr_text()[-2000:])
        return self.addrs[listener]

    @property
    def http_port(self):
        return self.addr("http")[1]

    @property
    def https_port(self):
        return self.addr("https")[1]

    @property
    def tunnel_port(self):
        return self.addr("tunnel")[1]

    @property
    def metrics_url(self):
        host, port = self.addr("metrics")
        return f"http://{host}:{port}"

    @property
    def management_url(self):
        host, port = self.addr("management")
        return f"http://{host}:{port}"

    @property
    def tunnel_url(self):
        host, port = self.addr("tunnel")
        return f"http://{host}:{port}"

    # --- logs and audit ----------------------------------------------------------------------
    def stderr_text(self):
        with self._lines_lock:
            return "\n".join(self.stderr_lines)

    def stdout_text(self):
        with self._lines_lock:
            return "\n".join(self.stdout_lines)

    def wait_stderr(self, needle: str, timeout=5.0) -> bool:
        """Wait (bounded) until `needle` appears in stderr (e.g. text printed after "ready")."""
        deadline = time.monotonic() + timeout
        with self._lines_cv:
            while needle not in "\n".join(self.stderr_lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lines_cv.wait(min(left, 0.1))
        return True

    def log_records(self):
        with self._lines_lock:
            return parse_json_lines(list(self.stderr_lines))

    def audit_records(self):
        """All audit records so far (msg == "request"), from the audit file or from stderr."""
        if self.audit_path is not None:
            try:
                text = self.audit_path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                return []
            # Ignore a partially written last line.
            lines = text.split("\n")
            if not text.endswith("\n"):
                lines = lines[:-1]
            recs = parse_json_lines(lines)
        else:
            recs = self.log_records()
        return [r for r in recs if r.get("msg") == "request"]

    def wait_audit(self, n=1, predicate=None, timeout=5.0, settle=0.3):
        """Wait (bounded) until at least n audit records (matching predicate) exist; then wait
        `settle` seconds more so a test asserting "exactly n" would see extra records."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.audit_records() if predicate is None or predicate(r)]
            if len(recs) >= n or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if len(recs) < n:
            raise AssertionError(
                f"expected {n} audit record(s), found {len(recs)} within {timeout} s:\n"
                + "\n".join(json.dumps(r) for r in self.audit_records()[-10:])
                + "\n--- proxy stderr tail ---\n" + self.stderr_text()[-2000:])
        if settle:
            time.sleep(settle)
            recs = [r for r in self.audit_records() if predicate is None or predicate(r)]
        return recs

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def run_binary(args, *, timeout=20, env=None, cwd=None):
    """Run the binary once (e.g. -check, generate-ca, version); return CompletedProcess (text)."""
    if not BINARY.exists():
        raise ProxyStartError("build/iron-proxy not found: run scripts/build.sh")
    proc = subprocess.Popen(
        [str(BINARY), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=clean_env(env), cwd=cwd, start_new_session=True, text=True)
    _register(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=5)
        raise AssertionError(
            f"iron-proxy {' '.join(args)} did not exit within {timeout} s\nstdout:{out}\nstderr:{err}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _unregister(proc.pid)
    note_sanitizer_lines(f"iron-proxy {' '.join(args)}", (out or "") + "\n" + (err or ""))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
