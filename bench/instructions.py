#!/usr/bin/env python3
"""Instruction-count A/B of iron-proxy builds: callgrind's Ir per request, which (unlike CPU seconds)
does not move with whatever else the machine is doing. Run it through bench/instructions.sh.

For each build, one proxy process runs under `valgrind --tool=callgrind` (the proxy only: curl and
nginx run natively) and goes through fixed workloads, one after the other. After each step the
driver waits until the proxy is idle and asks callgrind for a dump (`callgrind_control --dump`), so
every step has its own instruction total:

  startup              process start until the listeners answer
  W.warm               one request of workload W (leaf certificate minted, upstream pool filled)
  W.1 / W.N            one request / N requests of W, each on a new client connection that is
                       then closed; (Ir[W.N] - Ir[W.1]) / (N - 1) is the cost of one more request
                       on a keep-alive connection, with connection set-up, start-up and shutdown
                       cancelled out
  mitm_10m.1..3        one 10 MiB download on a new MITM connection, three times; the median minus
                       Ir[mitm_h1.1] (the same with 1 KiB), divided by the extra MiB: Ir per MiB
  shutdown             one SIGTERM until exit (the proxy drains and exits 0)

Workloads (curl; sequential requests on one connection, checked: every status 200, one connect):
  mitm_h1   CONNECT + TLS (MITM leaf) once, then GET /1k over HTTP/1.1
  plain_h1  GET /1k to the plain HTTP listener, Host: localhost (forwarded to nginx's plain port)
  mitm_h2   CONNECT + TLS once, then GET /1k as streams of one HTTP/2 connection

The proxy sees one CPU (a private mount namespace shows /sys/devices/system/cpu/online as "0"), so
it runs one worker thread: with a thread per core the kernel's SO_REUSEPORT hash would pick the
thread, and with it whether the thread's upstream pool already holds a connection, at random.
"""
import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import make_www
from bench_targets import binary_id, caller_path, iron_builds
from benchlib import BENCH, Server, install_signal_handlers, make_certs, proc_stat, render, run, wait_port

HOST = "localhost"
PORTS = {"upstream": 443, "upstream_http": 80, "iron": 18888, "iron_http": 18080, "iron_https": 18443}
WORKLOADS = [  # key, label, unit
    ("mitm_h1", "MITM HTTP/1.1 keep-alive 1 KiB GET", "req"),
    ("mitm_10m", "MITM 10 MiB download", "MiB"),
    ("plain_h1", "plain HTTP listener keep-alive 1 KiB GET", "req"),
    ("mitm_h2", "MITM HTTP/2 1 KiB GET (one stream at a time)", "req"),
]
# The 10 MiB step runs this many times (each a new connection), and the median counts: now and then
# one download costs more (seen: +1.8%; more copying, from how the stream was split into reads),
# and one such download must not decide the row.
BIG_REPEATS = 3
ONCE_ROWS = [  # key, label: informational costs paid once, not per request
    ("startup", "start-up until listening"),
    ("mitm_conn", "MITM connection: CONNECT + TLS + close (with a warm leaf cache)"),
    ("shutdown", "SIGTERM, drain and exit"),
]

# valgrind counts every iteration of `rep movsb` / `rep stosb` as one instruction, so glibc's memcpy
# and memset above 2 KiB would weigh a byte as much as a parser step, and how a TLS stream happened
# to be split into reads (timing, not code) would move the 10 MiB row by several per cent. These
# thresholds keep glibc on its vector loops (a few instructions per 32 bytes, as on hardware).
NO_REP_STRINGS = {"GLIBC_TUNABLES": "glibc.cpu.x86_rep_movsb_threshold=0x7fffffffffffffff:"
                                    "glibc.cpu.x86_rep_stosb_threshold=0x7fffffffffffffff"}

# ----------------------------------------------------------------------------------------------
# the proxy under callgrind


class Callgrind:
    """One build's proxy process under callgrind, with named dumps."""

    def __init__(self, cfg, label, binary):
        self.cfg, self.label = cfg, label
        self.dir = cfg.work / f"callgrind-{label}"
        self.dir.mkdir()
        online = cfg.work / "cpu-online-one"
        online.write_text("0\n")
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.dir}/callgrind.out",
                    f"--vgdb-prefix={self.dir}/vgdb", "--vgdb=yes", str(binary), "-config",
                    str(cfg.work / "iron" / "iron-proxy.yaml")]
        inner = f"mount --bind {online} /sys/devices/system/cpu/online && exec \"$@\""
        cmd = ["unshare", "--mount", "--", "sh", "-c", inner, "sh", *valgrind]
        self.server = Server(f"iron-proxy@{label}", cmd, cfg.work, cwd=cfg.work / "iron", env=NO_REP_STRINGS)
        self.pid = self.server.proc.pid  # unshare and sh exec: this is valgrind's pid

    def cpu_ticks(self):
        st = proc_stat(self.pid)
        return st[1] if st else None

    def wait_idle(self, quiet=0.6, limit=60.0):
        """Until the process used no CPU for `quiet` seconds (bounded): the requests' tails done."""
        deadline = time.monotonic() + limit
        last, since = self.cpu_ticks(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.cpu_ticks()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
        print(f"  [{self.label}] warning: proxy still busy after {limit:.0f} s; dumping anyway", flush=True)

    def dump(self, name):
        self.wait_idle()
        before = set(self.dir.glob("callgrind.out*"))
        r = run(["callgrind_control", f"--vgdb-prefix={self.dir}/vgdb", f"--dump={name}", str(self.pid)], 120)
        deadline = time.monotonic() + 60
        while not (set(self.dir.glob("callgrind.out*")) - before) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not set(self.dir.glob("callgrind.out*")) - before:
            raise RuntimeError(f"callgrind_control --dump={name} wrote nothing: {r.stdout}{r.stderr}")

    def stop(self):
        """One SIGTERM (a second one would mean "exit now"); the proxy must drain and exit 0."""
        self.wait_idle()
        self.server.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.server.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            rc = None
        self.server.stop()  # only kills what is left
        if rc != 0:
            raise RuntimeError(f"{self.label}: exit status {rc} after SIGTERM (see logs/{self.server.name}.out)")

    def totals(self):
        """{dump name: Ir} from the callgrind files (each holds the cost since the previous dump)."""
        out = {}
        for f in self.dir.glob("callgrind.out*"):
            trigger, total = None, None
            with open(f, errors="replace") as fh:
                for line in fh:
                    if line.startswith("desc: Trigger:"):
                        trigger = line.split(":", 2)[2].strip()
                    elif line.startswith(("summary:", "totals:")):
                        total = int(line.split()[1])
                        break
            if trigger is None or total is None:
                raise RuntimeError(f"{f}: no trigger or total")
            name = "shutdown" if trigger == "Program termination" else re.sub(r"^dump\s+", "", trigger)
            out[name] = total
        return out


# ----------------------------------------------------------------------------------------------
# clients


def curl(cfg, kind, path, n):
    """n sequential GETs of `path` in one curl process (one connection), checked."""
    if kind == "plain_h1":
        base = ["--noproxy", "*", "--http1.1", "-H", f"Host: {HOST}"]
        url = f"http://127.0.0.1:{PORTS['iron_http']}/{path}"
    else:
        base = ["-x", f"http://127.0.0.1:{PORTS['iron']}", "--cacert", str(cfg.certs / "bundle.pem"),
                "--http2" if kind == "mitm_h2" else "--http1.1"]
        url = f"https://{HOST}/{path}"
    urls = cfg.work / "urls.curlrc"
    urls.write_text(f'url = "{url}"\noutput = "/dev/null"\n' * n)
    cmd = ["curl", "-q", "-sS", "--max-time", str(60 + 30 * n), *base, "-w", "%{http_code} %{num_connects} "
           "%{http_version}\\n", "-K", str(urls)]
    r = run(cmd, 120 + 30 * n)
    lines = r.stdout.split()
    codes, connects, versions = lines[0::3], lines[1::3], set(lines[2::3])
    want_version = "2" if kind == "mitm_h2" else "1.1"
    if r.returncode != 0 or len(codes) != n or set(codes) != {"200"} or versions != {want_version}:
        raise RuntimeError(f"curl {kind} {path} ×{n}: rc={r.returncode} codes={sorted(set(codes))} "
                           f"n={len(codes)} versions={versions} {r.stderr.strip()[-300:]}")
    if sum(int(c) for c in connects) != 1:
        raise RuntimeError(f"curl {kind} ×{n}: {sum(int(c) for c in connects)} connections, want one")


def drive(cfg, cg):
    """Every step of one build, each followed by a named dump. Each workload warms up right before
    its own steps, so pooled upstream connections are seconds old, never near the pool's idle limit."""
    n = cfg.requests
    steps = [("mitm_h1.warm", "mitm_h1", "1k", 1), ("mitm_h1.1", "mitm_h1", "1k", 1),
             ("mitm_h1.N", "mitm_h1", "1k", n),
             *[(f"mitm_10m.{i}", "mitm_h1", "10m", 1) for i in range(1, BIG_REPEATS + 1)],
             ("plain_h1.warm", "plain_h1", "1k", 1), ("plain_h1.1", "plain_h1", "1k", 1),
             ("plain_h1.N", "plain_h1", "1k", n),
             ("mitm_h2.warm", "mitm_h2", "1k", 1), ("mitm_h2.1", "mitm_h2", "1k", 1),
             ("mitm_h2.N", "mitm_h2", "1k", n)]
    for name, kind, path, count in steps:
        t0 = time.monotonic()
        curl(cfg, kind, path, count)
        cg.dump(name)
        print(f"  [{cg.label}] {name:<14} {count:>5} × /{path}: {time.monotonic() - t0:5.1f} s", flush=True)
    requests = sum(count for *_, count in steps)
    tunnels = sum(1 for _, kind, *_ in steps if kind != "plain_h1")
    return requests, tunnels


def check_audit(logs, label, requests, tunnels):
    """Every GET and every CONNECT audited, all 200 (then kept as audit-LABEL.jsonl)."""
    path = logs / "iron-proxy.audit.jsonl"
    records = [json.loads(x)["audit"] for x in path.read_text().splitlines()] if path.exists() else []
    if path.exists():
        path.rename(logs / f"audit-{label}.jsonl")
    gets = sum(1 for a in records if a.get("method") == "GET")
    connects = sum(1 for a in records if a.get("method") == "CONNECT")
    statuses = {a.get("status_code") for a in records}
    if (gets, connects, statuses) != (requests, tunnels, {200}):
        raise RuntimeError(f"{label}: audit has {gets} GET (want {requests}), {connects} CONNECT "
                           f"(want {tunnels}), statuses {statuses}")


def measure(cfg, label, binary):
    """One fresh proxy process of one build through every step; `label` names this run."""
    t0 = time.monotonic()
    cg = Callgrind(cfg, label, binary)
    try:
        for key in ("iron", "iron_http", "iron_https"):
            if not wait_port(PORTS[key], 300):
                raise RuntimeError(f"{label}: port {PORTS[key]} not listening (see logs/iron-proxy@{label}.out)")
        cg.dump("startup")
        print(f"  [{label}] startup: {time.monotonic() - t0:.1f} s", flush=True)
        requests, tunnels = drive(cfg, cg)
        cg.stop()
    finally:
        cg.server.stop()  # a no-op once the proxy exited by itself
    check_audit(cfg.work / "logs", label, requests, tunnels)
    seg = cg.totals()
    return {"segments": seg, "figures": figures(seg, cfg.requests), "requests": requests,
            "seconds": round(time.monotonic() - t0, 1)}


def run_all(cfg, builds):
    """--runs rounds of every build, the order rotating by one build per round -> {label: [result]}."""
    results = {label: [] for label, _ in builds}
    for r in range(cfg.runs):
        shift = r % len(builds)
        for label, path in builds[shift:] + builds[:shift]:
            tag = label if cfg.runs == 1 else f"{label}.{r + 1}"
            results[label].append(measure(cfg, tag, path))
    return results


# ----------------------------------------------------------------------------------------------
# figures and report


def figures(seg, n):
    """Ir per unit for each workload, and the one-off costs."""
    per_req = lambda w: (seg[f"{w}.N"] - seg[f"{w}.1"]) / (n - 1)
    out = {w: per_req(w) for w in ("mitm_h1", "plain_h1", "mitm_h2")}
    extra_mib = (10 * 1024 * 1024 - 1024) / (1024 * 1024)
    big = statistics.median(seg[f"mitm_10m.{i}"] for i in range(1, BIG_REPEATS + 1))
    out["mitm_10m"] = (big - seg["mitm_h1.1"]) / extra_mib
    out["startup"] = seg["startup"]
    out["mitm_conn"] = seg["mitm_h1.1"] - out["mitm_h1"]
    out["shutdown"] = seg["shutdown"]
    return out


def fmt(v):
    return f"{v:,.0f}"


def median_figures(runs):
    return {k: statistics.median(r["figures"][k] for r in runs) for k in runs[0]["figures"]}


def spread(results, key):
    """Largest (max − min) ÷ median over the builds' runs, in per cent: the noise floor of a row."""
    worst = 0.0
    for runs in results.values():
        vals = [r["figures"][key] for r in runs]
        mid = statistics.median(vals)
        if mid:
            worst = max(worst, (max(vals) - min(vals)) / abs(mid) * 100)
    return worst


def markdown(cfg, builds, results, elapsed):
    labels = [label for label, _ in builds]
    med = {lab: median_figures(results[lab]) for lab in labels}
    head = ["workload", "unit", *[f"{lab} Ir" for lab in labels], *[f"{lab} ÷ {labels[0]}" for lab in labels[1:]]]
    if cfg.runs > 1:
        head.append("spread (max−min)/median")
    runs = f"medians of {cfg.runs} runs per build" if cfg.runs > 1 else "one run per build"
    lines = [f"# iron-proxy instruction counts (callgrind) — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "",
             f"Ir = instructions the proxy executed (all threads), from `valgrind --tool=callgrind`; per request "
             f"= (Ir of {cfg.requests} requests − Ir of 1 request, each on a new connection) ÷ {cfg.requests - 1}; "
             f"{runs}. Wall time {elapsed / 60:.1f} min.",
             "",
             "Builds: " + "; ".join(f"{lab} = {binary_id(path)}" for lab, path in builds),
             "",
             "| " + " | ".join(head) + " |",
             "|---|---|" + "---:|" * (len(head) - 2)]
    rows = [(k, label, f"Ir/{unit}") for k, label, unit in WORKLOADS] + [(k, label, "Ir once") for k, label in ONCE_ROWS]
    for key, label, unit in rows:
        vals = [med[lab][key] for lab in labels]
        cells = [label, unit, *[fmt(v) for v in vals], *[f"{v / vals[0]:.3f}×" if vals[0] else "n/a" for v in vals[1:]]]
        if cfg.runs > 1:
            cells.append(f"{spread(results, key):.2f}%")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Lower is better. Per-request rows cancel out connection set-up, start-up and shutdown; the "
              "`Ir once` rows are those one-off costs (informational). Runs of one build agree within about 1% "
              "on every row (docs/performance.md, \"Instruction counts\")."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--binary", action="append", metavar="[LABEL=]PATH",
                    help="a build to count (default build/iron-proxy); twice for an A/B: `old` then `new` "
                         "unless labelled LABEL=PATH")
    ap.add_argument("--requests", type=int, default=2000, help="N, requests per keep-alive workload")
    ap.add_argument("--runs", type=int, default=1,
                    help="fresh processes per build (order rotating); > 1 adds a spread column (the noise)")
    ap.add_argument("--netns", action="store_true", help="we are in a fresh network namespace: bring lo up")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "instructions-latest.md")
    cfg = ap.parse_args()
    cfg.out = caller_path(cfg.out)
    if cfg.requests < 2 or cfg.runs < 1:
        ap.error("--requests must be at least 2 and --runs at least 1")
    if not cfg.netns:
        ap.error("run through bench/instructions.sh: it needs a private network namespace (ports 80 and 443)")
    return cfg


def setup(cfg, first_binary):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    cfg.work = cfg.work.resolve()
    for d in ("logs", "nginx/tmp", "iron"):
        (cfg.work / d).mkdir(parents=True, exist_ok=True)
    cfg.certs = make_certs(cfg.work, first_binary)
    make_www(cfg.work)
    render("iron-proxy.yaml.in", cfg.work / "iron" / "iron-proxy.yaml",
           {"WORK": cfg.work, "IRON_PORT": PORTS["iron"], "IRON_HTTP_PORT": PORTS["iron_http"],
            "IRON_HTTPS_PORT": PORTS["iron_https"]})
    render("instr-nginx.conf.in", cfg.work / "nginx" / "nginx.conf",
           {"WORK": cfg.work, "UPSTREAM_ADDR": f"127.0.0.1:{PORTS['upstream']}",
            "UPSTREAM_HTTP_ADDR": f"127.0.0.1:{PORTS['upstream_http']}"})
    nginx = Server("nginx", ["nginx", "-c", str(cfg.work / "nginx" / "nginx.conf"), "-p", str(cfg.work / "nginx"),
                             "-e", str(cfg.work / "logs" / "nginx.error.log")], cfg.work)
    if not (wait_port(PORTS["upstream"], 20) and wait_port(PORTS["upstream_http"], 20)):
        raise SystemExit(f"nginx did not start; see {cfg.work}/logs/nginx.out")
    return nginx


def main():
    cfg = parse_args()
    install_signal_handlers()
    started = time.monotonic()
    builds = iron_builds(cfg.binary)
    if len(builds) == 1 and not builds[0][0]:
        builds = [("iron", builds[0][1])]
    nginx = setup(cfg, builds[0][1])
    print(f"instructions: {len(builds)} build(s) × {cfg.runs} run(s), N = {cfg.requests}; work dir {cfg.work}",
          flush=True)
    results = run_all(cfg, builds)
    nginx.stop()
    elapsed = time.monotonic() - started
    text = markdown(cfg, builds, results, elapsed)
    print("\n" + text)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(text)
    cfg.out.with_suffix(".json").write_text(json.dumps(
        {"requests": cfg.requests, "runs": cfg.runs, "builds": {lab: binary_id(p) for lab, p in builds},
         "medians": {lab: median_figures(runs) for lab, runs in results.items()}, "results": results},
        indent=1))
    print(f"instructions: wrote {cfg.out} and {cfg.out.with_suffix('.json')} in {elapsed:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
