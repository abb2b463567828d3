"""The benchmark's targets: what each column of the table runs and how it is configured and started.

  direct      no proxy: hey talks to nginx itself
  iron        the build(s) named by --binary: one build is the column `iron`; two or more (an A/B run)
              are `iron@LABEL` each, started from the same config file with the same CA
  squid       Squid with ssl_bump
  mitm        mitmproxy (mitmdump)
  go          the original Go iron-proxy (--go-binary), same listeners, CA, allowlist and deny list
  iron-otel   the (first) iron build with OpenTelemetry log export on (OTEL_EXPORTER_OTLP_ENDPOINT) to
              a local sink that answers every export 200: the cost of export, next to `iron`
  iron-mcp    the (first) iron build with an MCP tool policy; every phase POSTs a JSON-RPC tools/call
              (an allowed tool with a `when` clause) to nginx's /mcp: the cost of the policy
  iron-post   the same POSTs without the policy: the column iron-mcp compares with
  iron-grpc   the (first) iron build with a grpc transform on every request, calling a local
              python3-grpcio transform.v1.TransformService that answers CONTINUE (both phases)

plan_targets() turns --targets and --binary into column specs; bench/bench.py builds one fresh Target
per run and column, starts it, measures it and stops it."""
import hashlib
import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchlib import BENCH, Server, render, run

ROOT = BENCH.parent
LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")


def caller_path(value):
    """A path from the command line, absolute: relative to where bench/run.sh was called from (it
    changes to the repository root before running this driver), since the proxies run elsewhere."""
    return (Path(os.environ.get("BENCH_CALLER_DIR") or os.getcwd()) / value).resolve()


class Spec:
    """One column of the report: `key` names it in --targets and in the results, `name` in the table."""

    def __init__(self, key, name, cls, binary=None, title=None, note="", post_body=None):
        self.key, self.name, self.cls, self.binary = key, name, cls, binary
        self.post_body = post_body  # hey POSTs this (JSON) to /mcp in every phase instead of GET /1k
        self.title = title or name  # the value column's heading (may say more than `name`)
        self.note = note            # printed under the table

    def make(self, cfg):
        return self.cls(cfg, self)


class Target:
    port = 0

    def __init__(self, cfg, spec):
        self.cfg = cfg
        self.spec = spec
        self.key, self.name = spec.key, spec.name
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
    pass


class Iron(Target):
    env = None  # extra environment for the proxy (IronOtel's export settings)
    extra_yaml = ""  # appended to the config (IronMcp's policy)
    config_dir = "iron"  # one config file for every build: an A/B run compares binaries only
    extra_transforms = ""  # YAML list entries appended to the config's transforms (IronGrpc)
    proxy_extra = ""  # YAML lines added to the config's `proxy:` section (IronH1Upstream)

    def start(self):
        c = self.cfg
        d = c.work / self.config_dir
        d.mkdir(exist_ok=True)
        self.port = c.ports["iron"]
        render("iron-proxy.yaml.in", d / "iron-proxy.yaml",
               {"WORK": c.work, "IRON_PORT": self.port, "IRON_HTTP_PORT": c.ports["iron_http"],
                "IRON_HTTPS_PORT": c.ports["iron_https"]})
        if self.proxy_extra:
            conf = d / "iron-proxy.yaml"
            conf.write_text(conf.read_text().replace("proxy:\n", "proxy:\n" + self.proxy_extra, 1))
        # Transform entries first: they continue the rendered file's last section, `transforms:`.
        if self.extra_transforms or self.extra_yaml:
            with open(d / "iron-proxy.yaml", "a") as f:
                f.write(self.extra_transforms + self.extra_yaml)
        self.server = Server(self.name, [str(self.spec.binary), "-config", str(d / "iron-proxy.yaml")], c.work, cwd=d,
                             env=self.env)


class OtlpSink:
    """An OTLP/HTTP collector that reads each export and answers 200 (no decoding: the bench
    measures the proxy). Counts exports and bytes."""

    def __init__(self):
        sink = self
        self.exports = self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                sink.exports += 1
                sink.bytes += n
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class IronOtel(Iron):
    """`iron` with OTLP log export (http/protobuf, default batching) to an OtlpSink."""

    def start(self):
        self.sink = OtlpSink()
        self.env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.sink.port}"}
        super().start()

    def stop(self):
        super().stop()
        if getattr(self, "sink", None):
            print(f"bench: iron-otel sink received {self.sink.exports} exports, {self.sink.bytes} bytes", flush=True)
            self.sink.stop()
            self.sink = None


# The body iron-mcp and iron-post send, and the policy that allows it (one `when` clause holds).
MCP_CALL = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_repositories",'
            '"arguments":{"owner":"ironsh","query":"proxy"}}}')
MCP_POLICY = """mcp:
  servers:
    - name: bench
      rules: [{host: localhost, paths: ["/mcp"]}]
      tools:
        - name: search_repositories
          when: [{path: owner, equals: ironsh}]
        - name: create_issue
"""


class IronH1Upstream(Iron):
    """`iron` with proxy.upstream_h2_for_http1: false: HTTP/1.1 clients reach nginx over HTTP/1.1
    (by default they share the worker's HTTP/2 connection to it, since nginx offers h2)."""
    config_dir = "iron-h1up"
    proxy_extra = "  upstream_h2_for_http1: false\n"


class IronMcp(Iron):
    """`iron` with an MCP tool policy on the POSTs to /mcp."""
    config_dir = "iron-mcp"
    extra_yaml = MCP_POLICY


class TransformService:
    """bench/transform_service.py (a python3-grpcio transform.v1.TransformService answering
    CONTINUE) in a process of its own, run by Debian's /usr/bin/python3, which has grpcio."""

    def __init__(self, work):
        port_file = work / "transform-service.port"
        port_file.unlink(missing_ok=True)
        self.server = Server("transform-service",
                             ["/usr/bin/python3", str(BENCH / "transform_service.py"), "--proto-root",
                              str(ROOT / "proto"), "--out", str(work / "transform-py"), "--port-file", str(port_file)],
                             work)
        for _ in range(300):  # at most 30 s
            if port_file.exists() and port_file.read_text().strip():
                break
            if not self.server.alive():
                raise RuntimeError("the transform service exited: see logs/transform-service.out")
            time.sleep(0.1)
        else:
            raise RuntimeError("the transform service did not start within 30 s")
        self.port = int(port_file.read_text())

    def stop(self):
        self.server.stop()


class IronGrpc(Iron):
    """`iron` with a grpc transform (both phases, no bodies) on every request to a TransformService."""
    config_dir = "iron-grpc"

    def start(self):
        self.service = TransformService(self.cfg.work)
        self.extra_transforms = ("  - name: grpc\n    config:\n      name: bench-policy\n"
                                 f"      target: \"127.0.0.1:{self.service.port}\"\n")
        super().start()

    def stop(self):
        super().stop()
        if getattr(self, "service", None):
            self.service.stop()
            self.service = None


class Go(Target):
    """The Go original. Its config has no audit_path, upstream_ca_file or client timeouts (it has no
    server timeouts at all), so it trusts the upstream CA through SSL_CERT_FILE and writes its audit
    records to stderr (log.level info), which goes to a file as iron-proxy's audit file does."""

    def start(self):
        c = self.cfg
        d = c.work / "go"
        d.mkdir(exist_ok=True)
        self.port = c.ports["go"]
        render("go-iron-proxy.yaml.in", d / "iron-proxy.yaml",
               {"WORK": c.work, "GO_PORT": self.port, "GO_HTTP_PORT": c.ports["go_http"],
                "GO_HTTPS_PORT": c.ports["go_https"]})
        self.server = Server("iron-proxy-go", [str(self.spec.binary), "-config", str(d / "iron-proxy.yaml")], c.work,
                             cwd=d, env={"SSL_CERT_FILE": str(c.certs / "upstream-ca.crt")},
                             stderr_path=c.work / "logs" / "iron-proxy-go.audit.jsonl")


class Squid(Target):

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


FIXED = {"direct": Spec("direct", "direct", Direct), "squid": Spec("squid", "squid", Squid),
         "mitm": Spec("mitm", "mitmproxy", Mitm)}
DEFAULT_TARGETS = "direct,iron,squid,mitm,go"


def iron_builds(values):
    """--binary values ([LABEL=]PATH, in order) -> [(label, Path)]. Without a label, two builds are
    `old` and `new` (first, second); more are 1, 2, 3…; a lone build keeps the plain `iron` column."""
    builds = []
    for v in values or [str(ROOT / "build" / "iron-proxy")]:
        label, sep, path = v.partition("=")
        if not sep or not LABEL.match(label):  # no label, or the '=' belongs to the path
            label, path = "", v
        builds.append([label, caller_path(path)])
    if len(builds) > 1:
        defaults = ["old", "new"] if len(builds) == 2 else [str(i + 1) for i in range(len(builds))]
        for b, d in zip(builds, defaults):
            b[0] = b[0] or d
        labels = [b[0] for b in builds]
        if len(set(labels)) != len(labels):
            raise SystemExit(f"--binary labels must differ; got {labels}")
    for label, path in builds:
        if not (path.is_file() and path.stat().st_mode & 0o111):
            raise SystemExit(f"--binary {label + '=' if label else ''}{path}: no executable there")
    return [(label, path) for label, path in builds]


def iron_specs(builds):
    if len(builds) == 1:
        label, path = builds[0]
        return [Spec("iron", f"iron-proxy@{label}" if label else "iron-proxy", Iron, path)]
    return [Spec(f"iron@{label}", f"iron-proxy@{label}", Iron, path) for label, path in builds]


def find_go_binary(explicit):
    """--go-binary, else shared/goiron/iron-proxy-go beside one of the repository's parent
    directories, else iron-proxy-go on PATH; None when there is none."""
    if explicit:
        return caller_path(explicit)
    for parent in ROOT.parents:
        candidate = parent / "shared" / "goiron" / "iron-proxy-go"
        if candidate.is_file():
            return candidate
    found = shutil.which("iron-proxy-go")
    return Path(found) if found else None


def go_spec(explicit):
    """(Spec, None), or (None, why the go column is skipped)."""
    path = find_go_binary(explicit)
    if path is None:
        return None, "no Go iron-proxy found (looked for shared/goiron/iron-proxy-go above the repository " \
                     "and iron-proxy-go on PATH); --go-binary PATH names one"
    if not (path.is_file() and path.stat().st_mode & 0o111):
        return None, f"--go-binary {path}: no executable there"
    version = binary_version(path)
    m = re.search(r"go(\d+\.\d+)", version)
    toolchain = f"Go {m.group(1)}" if m else "Go ?"
    note = (f"iron-proxy-go is the original Go iron-proxy ({version}), built with {toolchain}, an older "
            f"toolchain than upstream's: a conservative baseline for the Go figures.")
    return Spec("go", "iron-proxy-go", Go, path, title=f"iron-proxy-go ({toolchain})", note=note), None


def binary_version(path):
    """The first line `PATH version` prints, or "?"."""
    try:
        r = run([str(path), "version"], 20)
        return ((r.stdout + r.stderr).strip().splitlines() or ["?"])[0]
    except Exception:  # noqa: BLE001
        return "?"


def binary_id(path):
    """Version, path and the start of the sha256: two builds of one tree print the same version."""
    return f"{binary_version(path)} ({path}, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"


def plan_targets(cfg):
    """--targets (with `iron` standing for every --binary build) -> ([Spec], [skip message])."""
    irons = iron_specs(iron_builds(cfg.binary))
    specs, skipped = [], []
    for name in [t.strip() for t in cfg.targets.split(",") if t.strip()]:
        if name == "iron":
            chosen = irons
        elif name.startswith("iron@"):
            chosen = [s for s in irons if s.key == name]
            if not chosen:
                raise SystemExit(f"unknown target {name!r}: the builds are {', '.join(s.key for s in irons)}")
        elif name == "go":
            spec, why = go_spec(cfg.go_binary)
            chosen = [spec] if spec else []
            if why:
                skipped.append(f"go: {why}")
        elif name == "iron-otel":
            chosen = [Spec("iron-otel", "iron-proxy+otel", IronOtel, irons[0].binary,
                           note="iron-proxy+otel: the same build with OTLP log export (http/protobuf) to a local "
                                "sink that answers 200.")]
        elif name in ("iron-mcp", "iron-post"):
            mcp = name == "iron-mcp"
            chosen = [Spec(name, "iron-proxy+mcp" if mcp else "iron-proxy POST", IronMcp if mcp else Iron,
                           irons[0].binary, post_body=MCP_CALL,
                           note=f"{'iron-proxy+mcp' if mcp else 'iron-proxy POST'}: every phase POSTs a JSON-RPC "
                                f"tools/call to /mcp{' through an MCP tool policy' if mcp else ' (no MCP policy)'}.")]
        elif name == "iron-h1up":
            # The last build: in an A/B run the old one may predate the switch (it refuses the key).
            chosen = [Spec("iron-h1up", "iron-proxy h1 upstream", IronH1Upstream, irons[-1].binary,
                           note="iron-proxy h1 upstream: the newest build with proxy.upstream_h2_for_http1: false, so "
                                "its HTTP/1.1 rows reach nginx over HTTP/1.1 (the iron rows: over HTTP/2).")]
        elif name == "iron-grpc":
            chosen = [Spec("iron-grpc", "iron-proxy+grpc", IronGrpc, irons[0].binary,
                           note="iron-proxy+grpc: the same build with a grpc transform on every request (request "
                                "and response calls) to a local python3-grpcio service that answers CONTINUE.")]
        elif name in FIXED:
            chosen = [FIXED[name]]
        else:
            raise SystemExit(f"unknown target {name!r}; choose from direct, iron, iron@LABEL, iron-otel, iron-mcp, iron-post, "
                             "iron-grpc, iron-h1up, squid, mitm, go")
        specs += [s for s in chosen if s.key not in {x.key for x in specs}]
    return specs, skipped
