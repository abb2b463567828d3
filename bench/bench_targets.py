"""The benchmark's targets: how each proxy (and the direct connection) is configured and started.
bench/bench.py builds one fresh Target per run and target, starts it, measures it and stops it."""
import shutil
from pathlib import Path

from benchlib import Server, render, run

TARGET_NAMES = {"direct": "direct", "iron": "iron-proxy", "squid": "squid", "mitm": "mitmproxy"}

class Target:
    key = ""
    port = 0

    def __init__(self, cfg):
        self.cfg = cfg
        self.server = None

    @property
    def proxy(self):
        return f"127.0.0.1:{self.port}" if self.port else None

    def start(self):
        pass

    def stop(self):
        if self.server:
            self.server.stop()
            self.server = None

    @property
    def sid(self):
        return self.server.sid if self.server else None


class Direct(Target):
    key = "direct"


class Iron(Target):
    key = "iron"

    def start(self):
        c = self.cfg
        d = c.work / "iron"
        d.mkdir(exist_ok=True)
        self.port = c.ports["iron"]
        render("iron-proxy.yaml.in", d / "iron-proxy.yaml",
               {"WORK": c.work, "IRON_PORT": self.port, "IRON_HTTP_PORT": c.ports["iron_http"],
                "IRON_HTTPS_PORT": c.ports["iron_https"]})
        self.server = Server("iron-proxy", [str(c.binary), "-config", str(d / "iron-proxy.yaml")], c.work, cwd=d)


class Squid(Target):
    key = "squid"

    def start(self):
        c = self.cfg
        d = c.work / "squid"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        shutil.copy(c.certs / "ca.crt", d / "ca.crt")
        shutil.copy(c.certs / "ca.key", d / "ca.key")
        r = run(["/usr/lib/squid/security_file_certgen", "-c", "-s", str(d / "ssl_db"), "-M", "16MB"], 30)
        if r.returncode != 0:
            raise RuntimeError(f"security_file_certgen -c failed: {r.stdout}{r.stderr}")
        self.port = c.ports["squid"]
        render("squid.conf.in", d / "squid.conf",
               {"WORK": c.work, "SQUID_PORT": self.port, "SQUID_WORKERS": c.squid_workers})
        # Squid drops to the `proxy` user; SMP workers talk over sockets in /run/squid.
        Path("/run/squid").mkdir(exist_ok=True)
        shutil.chown("/run/squid", "proxy", "proxy")
        for p in [d, *d.rglob("*")]:
            shutil.chown(p, "proxy", "proxy")
        self.server = Server("squid", ["squid", "--foreground", "-f", str(d / "squid.conf")], c.work, cwd=d)


class Mitm(Target):
    key = "mitm"

    def start(self):
        c = self.cfg
        d = c.work / "mitm"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        key = (c.certs / "ca.key").read_text()
        crt = (c.certs / "ca.crt").read_text()
        (d / "mitmproxy-ca.pem").write_text(key + crt)
        (d / "mitmproxy-ca-cert.pem").write_text(crt)
        self.port = c.ports["mitm"]
        cmd = ["mitmdump", "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
               "--set", f"confdir={d}",
               "--set", f"ssl_verify_upstream_trusted_ca={c.certs / 'upstream-ca.crt'}",
               "--set", "stream_large_bodies=1",
               "--set", "flow_detail=0", "--set", "termlog_verbosity=warn"]
        self.server = Server("mitmproxy", cmd, c.work, cwd=d, env={"HOME": str(d)})


TARGETS = {"direct": Direct, "iron": Iron, "squid": Squid, "mitm": Mitm}
