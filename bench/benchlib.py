"""What bench/bench.py and bench/soak.py share: processes in their own sessions (killed on exit,
session ids appended to WORK/pgids for the shell's trap), /proc readings, config templates and the
test certificates (proxy CA from `iron-proxy generate-ca`, upstream CA + `localhost` server cert).
"""
import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ----------------------------------------------------------------------------------------------
# processes


LIVE = {}  # sid -> name


def kill_session(sid, sig):
    """Send `sig` once to every process of the session. Once: iron-proxy (like many servers) reads
    a second SIGTERM as "stop draining, exit now", so the group signal is only the fallback for
    processes /proc no longer lists."""
    pids = session_pids(sid)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    if pids:
        return
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_everything():
    for sid in list(LIVE):
        kill_session(sid, signal.SIGKILL)
        LIVE.pop(sid, None)


atexit.register(kill_everything)


def on_signal(signum, frame):
    kill_everything()
    sys.exit(128 + signum)


def install_signal_handlers():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def track(sid, name, work=None):
    """Kill session `sid` on exit (and from the shell's trap when `work` is given)."""
    LIVE[sid] = name
    if work is not None:
        with open(Path(work) / "pgids", "a") as f:
            f.write(f"{sid}\n")


def proc_stat(pid):
    """(session id, cpu ticks incl. reaped children) of a pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    # rest[0] = state (field 3); session = field 6; utime..cstime = fields 14..17
    return int(rest[3]), sum(int(x) for x in rest[11:15])


def session_pids(sid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] == sid:
                out.append(int(name))
    return out


def session_cpu_seconds(sid):
    total = 0
    for pid in session_pids(sid):
        st = proc_stat(pid)
        if st:
            total += st[1]
    return total / CLK_TCK


def session_kib(sid, field):
    """Sum of VmRSS or VmHWM (KiB) over the session's processes (shared pages count once per
    process, so a multi-process proxy is over-, never under-stated)."""
    total = 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    """A process in its own session; stdout (and stderr unless `stderr_path` names a file of its own)
    goes to WORK/logs/NAME.out."""

    def __init__(self, name, cmd, work, cwd=None, env=None, stderr_path=None):
        self.name = name
        self.cmd = cmd
        self.log = open(work / "logs" / f"{name}.out", "ab")
        self.err = open(stderr_path, "ab") if stderr_path else None
        env_full = clean_env()
        env_full.update(env or {})
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.err or subprocess.STDOUT,
                                     cwd=str(cwd or work), env=env_full, start_new_session=True)
        self.sid = self.proc.pid
        track(self.sid, name, work)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=5.0):
        if self.sid not in LIVE:
            return
        kill_session(self.sid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.alive() or session_pids(self.sid)):
            self.proc.poll()
            time.sleep(0.1)
        kill_session(self.sid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        LIVE.pop(self.sid, None)
        self.log.close()
        if self.err:
            self.err.close()


def clean_env():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def wait_port(port, timeout=20.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                          env=clean_env(), **kw)




def render(template, out, values):
    text = (BENCH / "conf" / template).read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    out.write_text(text)


def make_certs(work, binary):
    certs = work / "certs"
    certs.mkdir()
    r = run([binary, "generate-ca", "-outdir", str(certs), "-name", "iron-bench CA", "-alg", "ecdsa-p256"], 30)
    if r.returncode != 0:
        raise SystemExit(f"generate-ca failed: {r.stdout}{r.stderr}")
    ossl = lambda *a: run(["openssl", *a], 30, cwd=str(certs))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["req", "-x509", *ec, "-keyout", "upstream-ca.key", "-out", "upstream-ca.crt", "-days", "2",
         "-subj", "/CN=iron-bench upstream CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", "upstream.key", "-out", "upstream.csr", "-subj", "/CN=localhost"],
    ]
    (certs / "upstream.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    steps.append(["x509", "-req", "-in", "upstream.csr", "-CA", "upstream-ca.crt", "-CAkey", "upstream-ca.key",
                  "-CAcreateserial", "-days", "1", "-extfile", "upstream.ext", "-out", "upstream.crt"])
    for s in steps:
        r = ossl(*s)
        if r.returncode != 0:
            raise SystemExit(f"openssl {' '.join(s)} failed: {r.stderr}")
    # What clients trust: the proxy CA (MITM leaves) and the upstream CA (direct).
    (certs / "bundle.pem").write_text((certs / "ca.crt").read_text() + (certs / "upstream-ca.crt").read_text())
    return certs
