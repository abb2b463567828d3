"""`iron-proxy audit`: the audit log as aligned human lines (colour only on a terminal), filtered by
action and host glob, raw with -json, bad lines skipped with a count, and -follow across rotation
and truncation."""
import json
import os
import pty
import select
import signal
import subprocess
import time

from harness import clients
from harness.paths import BINARY, clean_env
from harness.proxy import run_binary


def _record(host, action="allow", status=200, method="GET", path="/", warn=False, rejected_by=""):
    line = {"time": "2025-01-02T03:04:05.000000001Z", "level": "INFO", "msg": "request",
            "audit": {"host": host, "method": method, "path": path, "remote_addr": "127.0.0.1:1", "sni": "",
                      "mode": "mitm", "action": action, "status_code": status, "duration_ms": 1.25}}
    if rejected_by:
        line["rejected_by"] = rejected_by
    if warn:
        line["request_transforms"] = [{"name": "allowlist", "action": "allow", "duration_ms": 0,
                                       "annotations": {"action": "warn"}}]
    return json.dumps(line) + "\n"


def test_real_records_aligned_and_filtered(proxy_factory, https_upstream, ca_cert, tmp_path):
    proxy = proxy_factory.start(domains=["allowed.test"], rules=[{"host": "warn.test", "methods": ["POST"]}])
    port = https_upstream.port
    assert clients.curl(f"https://allowed.test:{port}/echo", proxy=proxy.tunnel_url, cacert=ca_cert).http_code == 200
    assert clients.curl(f"https://denied.test:{port}/", proxy=proxy.tunnel_url, cacert=ca_cert).http_connect == 403
    proxy.wait_audit(3)
    proxy.stop()
    audit = proxy.audit_path

    out = run_binary(["audit", str(audit)])
    assert out.returncode == 0 and out.stderr == ""
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout
    assert "\033[" not in out.stdout  # not a terminal: no colour
    # Aligned: the action column starts at the same offset on every line.
    offsets = {l.index(w) for l in lines for w in ("allow", "reject") if f" {w} " in l}
    assert len(offsets) == 1, lines
    denied = [l for l in lines if "denied.test" in l]
    assert len(denied) == 1 and "reject" in denied[0] and "403" in denied[0] and "CONNECT" in denied[0]
    assert "allowlist" in denied[0] and "ms" in denied[0]

    rej = run_binary(["audit", "-action", "reject", str(audit)]).stdout.splitlines()
    assert len(rej) == 1 and "denied.test" in rej[0]
    by_host = run_binary(["audit", "-host", "*.test", "-action=allow", str(audit)]).stdout.splitlines()
    assert len(by_host) == 2 and all("allowed.test" in l for l in by_host)
    raw = run_binary(["audit", "-json", "-host", "denied.test", str(audit)]).stdout.splitlines()
    assert [json.loads(l)["audit"]["host"] for l in raw] == [f"denied.test:{port}"]


def test_warn_action_and_bad_lines_from_stdin(tmp_path):
    text = (_record("a.test") + "this is not json\n" + _record("w.test", warn=True) + "{\"audit\": 3}\n" +
            json.dumps({"level": "INFO", "msg": "iron-proxy ready"}) + "\n" + "\x00\xff garbage\n")
    p = subprocess.run([str(BINARY), "audit", "-action", "warn"], input=text.encode("latin-1"), capture_output=True,
                       env=clean_env(), timeout=20)
    assert p.returncode == 0
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1 and "w.test" in lines[0] and " warn " in lines[0]
    err = p.stderr.decode()
    assert "skipped 3 malformed lines" in err and "1 log line that is not" in err
    assert run_binary(["audit", "-action", "nope"]).returncode == 2


def test_colour_on_a_terminal(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text(_record("a.test") + _record("d.test", "reject", 403, rejected_by="allowlist"))
    master, slave = pty.openpty()
    p = subprocess.Popen([str(BINARY), "audit", str(f)], stdout=slave, stderr=subprocess.PIPE, env=clean_env(
        drop=("NO_COLOR",)))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if not r:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=10)
    os.close(master)
    assert b"\033[32mallow" in out and b"\033[31mreject" in out, out


class Follower:
    """`iron-proxy audit -follow FILE` with bounded reads of its output."""

    def __init__(self, path):
        self.p = subprocess.Popen([str(BINARY), "audit", "-follow", str(path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=clean_env(), start_new_session=True)
        os.set_blocking(self.p.stdout.fileno(), False)
        self.buf = b""

    def wait_for(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle.encode() in self.buf:
                return True
            select.select([self.p.stdout], [], [], 0.2)
            chunk = self.p.stdout.read()
            if chunk:
                self.buf += chunk
        return needle.encode() in self.buf

    def stop(self):
        os.killpg(self.p.pid, signal.SIGTERM)
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=5)


def test_follow_across_rotation_and_truncation(tmp_path):
    log = tmp_path / "audit.jsonl"
    log.write_text(_record("first.test"))
    f = Follower(log)
    try:
        assert f.wait_for("first.test")
        with log.open("a") as out:  # appended, and a line written in two parts
            out.write(_record("second.test")[:30])
            out.flush()
            time.sleep(0.3)
            out.write(_record("second.test")[30:])
        assert f.wait_for("second.test")
        os.rename(log, tmp_path / "audit.jsonl.1")  # rotated: the old file gets one last line
        with (tmp_path / "audit.jsonl.1").open("a") as old:
            old.write(_record("last-of-old.test"))
        log.write_text(_record("rotated.test"))
        assert f.wait_for("last-of-old.test")
        assert f.wait_for("rotated.test")
        with log.open("w") as out:  # truncated in place, then written again
            out.write(_record("t.test"))
        assert f.wait_for("t.test")
        assert f.buf.count(b"first.test") == 1  # nothing re-read from the old files
    finally:
        f.stop()
    assert f.p.returncode is not None
