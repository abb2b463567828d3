#!/usr/bin/env python3
"""Whole-proxy benchmark: iron-proxy vs the Go iron-proxy vs Squid vs mitmproxy vs a direct
connection; or two iron-proxy builds side by side (A/B: --binary OLD --binary NEW).

Run it through bench/run.sh, which installs the packages, builds the proxy, raises the fd limit,
puts everything in a private network namespace (loopback only) and cleans up. This driver:

  * makes the certificates (proxy CA: ECDSA P-256 from `iron-proxy generate-ca`, shared by all
    the proxies; upstream CA + server cert for nginx: ECDSA P-256 via openssl),
  * starts nginx (TLS on 127.0.0.1:443, /1k and /10m, keep-alive) once,
  * per run and per target (rotating the order each run): starts the proxy fresh, warms it up,
    and measures with hey (CONNECT through the proxy, TLS to the MITM leaf, keep-alive):
      keep-alive 1 KiB at c=1 and c=32, new TLS connection per request (c=32), 10 MiB down and up at c=1;
    a single-connection probe (bench/pyclient.py) for microsecond c=1 latency; proxy CPU from
    /proc/<pid>/stat (all processes of the proxy's session) and RSS from /proc/<pid>/status;
    on the first --idle-runs runs, N idle MITM connections (CONNECT + TLS, then nothing),
  * prints one table of medians with ratios, and writes it to --out (plus raw JSON beside it).

Every wait is bounded; every process started here is in its own session and is killed on exit
(the session ids are also appended to WORK/pgids so run.sh's trap can kill them).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench_report import markdown, medians
from bench_targets import DEFAULT_TARGETS, binary_id, caller_path, iron_builds, plan_targets
from benchlib import (BENCH, LIVE, Server, clean_env, install_signal_handlers, kill_session, make_certs, render, run,
                      session_cpu_seconds, session_kib, track, wait_port)

HOST = "localhost"  # resolves to 127.0.0.1 from /etc/hosts for every proxy (c-ares, squid, python)

# ----------------------------------------------------------------------------------------------
# set-up and measurements


def machine_cpu_jiffies():
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:9]]
    idle = vals[3] + vals[4]  # idle + iowait
    return sum(vals) - idle, sum(vals)


def children_cpu_seconds():
    """user+system CPU of this script's finished (waited-for) children, e.g. every hey run."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def make_www(work):
    www = work / "www"
    www.mkdir()
    (www / "1k").write_bytes(b"x" * 1024)
    with open(www / "10m", "wb") as f:
        chunk = bytes(range(256)) * 4096  # 1 MiB
        for _ in range(10):
            f.write(chunk)


# ----------------------------------------------------------------------------------------------
# load


def url(cfg, path):
    return f"https://{HOST}/{path}" if cfg.ports["upstream"] == 443 else f"https://{HOST}:{cfg.ports['upstream']}/{path}"


def curl_ok(cfg, proxy, path="1k"):
    cmd = ["curl", "-q", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
           "--cacert", str(cfg.certs / "bundle.pem")]
    cmd += ["-x", f"http://{proxy}"] if proxy else ["--noproxy", "*"]
    try:
        r = run(cmd + [url(cfg, path)], 20)
    except subprocess.TimeoutExpired:
        return False, "curl timed out"
    return r.stdout.strip() == "200", f"curl: code={r.stdout.strip()} {r.stderr.strip()[-300:]}"


def negotiated_http_version(cfg, proxy):
    """The HTTP version a client that offers h2 ends up with through `proxy` ("2", "1.1", or "?").
    Squid's ssl_bump does not speak HTTP/2 to clients, so its HTTP/2 row is really HTTP/1.1."""
    cmd = ["curl", "-q", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version}", "--max-time", "10",
           "--cacert", str(cfg.certs / "bundle.pem")]
    cmd += ["-x", f"http://{proxy}"] if proxy else ["--noproxy", "*"]
    try:
        return run(cmd + [url(cfg, "1k")], 20).stdout.strip() or "?"
    except subprocess.TimeoutExpired:
        return "?"


def parse_hey(text):
    out = {"rps": None, "p50_ms": None, "p99_ms": None, "ok": 0, "bad": 0, "errors": 0}
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            out["rps"] = float(s.split()[1])
        elif s.startswith("50% in"):
            out["p50_ms"] = float(s.split()[2]) * 1000
        elif s.startswith("99% in"):
            out["p99_ms"] = float(s.split()[2]) * 1000
        elif s.startswith("Status code distribution"):
            section = "status"
        elif s.startswith("Error distribution"):
            section = "errors"
        elif section == "status" and s.startswith("["):
            code, n = s[1:].split("]")
            n = int(n.split()[0])
            if code == "200":
                out["ok"] += n
            else:
                out["bad"] += n
        elif section == "errors" and s.startswith("["):
            out["errors"] += int(s[1:].split("]")[0])
            out.setdefault("first_error", s[:200])
    return out


def hey(cfg, target, path, c, seconds, keepalive=True, h2=False, upload=None):
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(c), "-t", "10", "-disable-compression",
           "-disable-redirects"]
    if target.proxy:
        cmd += ["-x", f"http://{target.proxy}"]
    if upload:  # POST the file's bytes (hey reads it once and sends it with every request)
        cmd += ["-m", "POST", "-T", "application/octet-stream", "-D", str(upload)]
    elif getattr(target.spec, "post_body", None):  # iron-mcp / iron-post: a JSON-RPC tools/call each
        cmd += ["-m", "POST", "-T", "application/json", "-d", target.spec.post_body]
        path = "mcp"
    if not keepalive:
        cmd.append("-disable-keepalive")
    if h2:  # offers h2 in ALPN; hey's workers share one connection, so c = concurrent streams
        cmd.append("-h2")
    cmd.append(url(cfg, path))
    try:
        r = run(cmd, seconds + 60)
    except subprocess.TimeoutExpired:
        return {"rps": None, "error": "hey timed out"}
    res = parse_hey(r.stdout)
    total = res["ok"] + res["bad"] + res["errors"]
    if r.returncode != 0 or res["rps"] is None or total == 0 or res["ok"] < 0.99 * total:
        res["invalid"] = f"hey rc={r.returncode} ok={res['ok']} bad={res['bad']} errors={res['errors']} " \
                         f"{res.get('first_error', '')} {r.stderr.strip()[-200:]}"
    return res


def probe(cfg, target):
    cmd = [sys.executable, str(BENCH / "pyclient.py"), "probe", "--target", f"{HOST}:{cfg.ports['upstream']}",
           "--cafile", str(cfg.certs / "bundle.pem"), "--path", "/1k",
           "--requests", str(cfg.probe_requests), "--seconds", str(cfg.duration * 2)]
    if target.proxy:
        cmd += ["--proxy", target.proxy]
    try:
        r = run(cmd, cfg.duration * 2 + 30)
        return json.loads(r.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001
        return {"error": f"probe failed: {e}"}


def idle_test(cfg, target):
    n = cfg.idle_conns
    before = session_kib(target.sid, "VmRSS")
    cmd = [sys.executable, str(BENCH / "pyclient.py"), "idle", "--proxy", target.proxy,
           "--target", f"{HOST}:{cfg.ports['upstream']}", "--cafile", str(cfg.certs / "bundle.pem"),
           "--n", str(n), "--concurrency", "64", "--open-seconds", str(cfg.idle_open_seconds),
           "--hold-seconds", "120"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=clean_env(), start_new_session=True)
    track(p.pid, "idle-client")
    try:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        line = ""
        if sel.select(timeout=cfg.idle_open_seconds + 60):
            line = p.stdout.readline()
        if not line:
            return {"error": "idle client produced no report"}
        rep = json.loads(line)
        time.sleep(2.0)  # let the proxy settle (lazy frees, timers)
        after = session_kib(target.sid, "VmRSS")
        rep.update(rss_before_kib=before, rss_after_kib=after)
        if rep["opened"]:
            rep["kib_per_conn"] = (after - before) / rep["opened"]
        return rep
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        kill_session(p.pid, signal.SIGKILL)
        LIVE.pop(p.pid, None)


def measure(cfg, target, run_index, do_idle):
    res = {"target": target.key, "run": run_index}
    log = lambda msg: print(f"  [{target.name:>14} run {run_index + 1}] {msg}", flush=True)
    try:
        target.start()
        if target.proxy and not wait_port(target.port, 30):
            raise RuntimeError(f"{target.key} did not listen on {target.port}")
        ok, why = False, ""
        for _ in range(50):  # bounded: up to ~10 s for the first request to succeed
            ok, why = curl_ok(cfg, target.proxy)
            if ok:
                break
            time.sleep(0.2)
        if not ok:
            raise RuntimeError(f"{target.key}: first request failed: {why}")
        hey(cfg, target, "1k", 4, 1)  # warm-up: leaf minted, pools filled, code paths hot
        sid = target.sid
        d = cfg.duration

        res["ka1"] = hey(cfg, target, "1k", 1, d)
        log(f"keep-alive c=1  : {res['ka1'].get('rps')} req/s")
        cpu0 = session_cpu_seconds(sid) if sid else 0
        # Who used the two cores during the c=32 phase: the machine as a whole, and hey + nginx.
        machine0, others0 = machine_cpu_jiffies(), children_cpu_seconds() + session_cpu_seconds(cfg.nginx_sid)
        res["ka32"] = hey(cfg, target, "1k", 32, d)
        machine1, others1 = machine_cpu_jiffies(), children_cpu_seconds() + session_cpu_seconds(cfg.nginx_sid)
        reqs = res["ka32"].get("ok", 0) + res["ka32"].get("bad", 0)
        if machine1[1] > machine0[1]:
            res["ka32_busy_pct"] = 100.0 * (machine1[0] - machine0[0]) / (machine1[1] - machine0[1])
        if reqs:
            res["others_cpu_per_10k"] = (others1 - others0) / reqs * 10000
        if sid and reqs:
            res["cpu_per_10k"] = (session_cpu_seconds(sid) - cpu0) / reqs * 10000
        log(f"keep-alive c=32 : {res['ka32'].get('rps')} req/s, cpu/10k={res.get('cpu_per_10k')}")
        res["newconn"] = hey(cfg, target, "1k", 32, d, keepalive=False)
        log(f"new conn  c=32  : {res['newconn'].get('rps')} req/s")
        res["big"] = hey(cfg, target, "10m", 1, d)
        if res["big"].get("rps"):
            res["big"]["mibs"] = res["big"]["rps"] * 10.0
        log(f"10 MiB    c=1   : {res['big'].get('mibs')} MiB/s")
        res["upload"] = hey(cfg, target, "upload", 1, d, upload=cfg.work / "www" / "10m")
        if res["upload"].get("rps"):
            res["upload"]["mibs"] = res["upload"]["rps"] * 10.0
        log(f"10 MiB up c=1   : {res['upload'].get('mibs')} MiB/s")
        res["h2_version"] = negotiated_http_version(cfg, target.proxy)
        res["h2"] = hey(cfg, target, "1k", 32, d, h2=True)
        log(f"HTTP/2    c=32  : {res['h2'].get('rps')} req/s (negotiated HTTP/{res['h2_version']})")
        res["probe"] = probe(cfg, target)
        log(f"probe     c=1   : {res['probe']}")
        if sid:
            res["peak_rss_kib"] = session_kib(sid, "VmHWM")
            if do_idle:
                res["idle"] = idle_test(cfg, target)
                log(f"idle {cfg.idle_conns:>6}     : {res['idle']}")
            if not target.server.alive():
                res["died"] = True
    except Exception as e:  # noqa: BLE001 - recorded in the results, the run goes on
        res["error"] = str(e)
        log(f"ERROR {e}")
    finally:
        target.stop()
    return res


def versions(cfg, specs):
    def first(cmd):
        try:
            r = run(cmd, 20)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return "?"

    def deb(p):
        return first(["dpkg-query", "-W", "-f", "${Version}", p])

    out = {s.name: binary_id(s.binary) for s in specs if s.binary}
    out.update({"nginx": deb("nginx"), "squid-openssl": deb("squid-openssl"), "mitmproxy": deb("mitmproxy"),
                "hey": deb("hey"), "openssl": first(["openssl", "version"])})
    return out


# ----------------------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--binary", action="append", metavar="[LABEL=]PATH",
                    help="the iron-proxy build to measure (default build/iron-proxy). Give it twice for an A/B "
                         "run: the first is `old`, the second `new` unless labelled (LABEL=PATH), each its own "
                         "column `iron@LABEL`, with a new ÷ old ratio column")
    ap.add_argument("--go-binary", help="the Go iron-proxy for the `go` target (default: shared/goiron/"
                                        "iron-proxy-go above the repository, or iron-proxy-go on PATH)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=3, help="seconds per hey phase")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--idle-runs", type=int, default=1, help="runs that include the idle test (0 = skip)")
    ap.add_argument("--idle-open-seconds", type=int, default=150)
    ap.add_argument("--probe-requests", type=int, default=3000)
    ap.add_argument("--targets", default=DEFAULT_TARGETS,
                    help="comma list of direct, iron (every --binary build), iron@LABEL (one build), squid, "
                         "mitm, go (default %(default)s)")
    ap.add_argument("--squid-workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--nginx-workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--upstream-port", type=int, default=443)
    ap.add_argument("--netns", action="store_true", help="we are in a fresh network namespace: bring lo up")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "latest.md")
    cfg = ap.parse_args()
    cfg.out = caller_path(cfg.out)
    return cfg


def choose_ports(cfg):
    cfg.ports = {"upstream": cfg.upstream_port, "iron": 18888, "iron_http": 18080, "iron_https": 18443,
                 "go": 18889, "go_http": 18082, "go_https": 18444, "squid": 13128, "mitm": 18081}
    if not cfg.netns:  # on the shared loopback: take free ports for the proxies
        for k in cfg.ports:
            if k != "upstream":
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    cfg.ports[k] = s.getsockname()[1]


def start_nginx(cfg):
    render("nginx.conf.in", cfg.work / "nginx" / "nginx.conf",
           {"WORK": cfg.work, "NGINX_WORKERS": cfg.nginx_workers, "UPSTREAM_ADDR": f"127.0.0.1:{cfg.upstream_port}"})
    nginx = Server("nginx", ["nginx", "-c", str(cfg.work / "nginx" / "nginx.conf"), "-p", str(cfg.work / "nginx"),
                             "-e", str(cfg.work / "logs" / "nginx.error.log")], cfg.work)
    cfg.nginx_sid = nginx.sid
    if not wait_port(cfg.upstream_port, 20):
        raise SystemExit(f"nginx did not start; see {cfg.work}/logs/nginx.out")
    ok, why = curl_ok(cfg, None)
    if not ok:
        raise SystemExit(f"nginx does not serve /1k: {why}")
    return nginx


def run_all(cfg, specs):
    """Every run measures every target once, a fresh process each time; the order rotates by one
    target per run, so no target (and neither build of an A/B run) always goes first."""
    results = []
    for run_index in range(cfg.runs):
        shift = run_index % len(specs)
        for spec in specs[shift:] + specs[:shift]:
            do_idle = run_index < cfg.idle_runs and spec.key != "direct"
            results.append(measure(cfg, spec.make(cfg), run_index, do_idle))
    return results


def main():
    cfg = parse_args()
    install_signal_handlers()
    started = time.monotonic()
    specs, skipped = plan_targets(cfg)
    for why in skipped:
        print(f"bench: target skipped: {why}", flush=True)
    if not specs:
        raise SystemExit("bench: no target left to measure")
    if cfg.netns:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    cfg.work = cfg.work.resolve()
    (cfg.work / "logs").mkdir(parents=True, exist_ok=True)
    (cfg.work / "nginx" / "tmp").mkdir(parents=True, exist_ok=True)
    choose_ports(cfg)
    # One CA and one upstream certificate for every target (both builds of an A/B run included).
    first_iron = next((s.binary for s in specs if s.key.startswith("iron")), None)
    cfg.certs = make_certs(cfg.work, first_iron or iron_builds(cfg.binary)[0][1])
    make_www(cfg.work)
    nginx = start_nginx(cfg)

    print(f"bench: {cfg.runs} run(s) × {[s.key for s in specs]}, {cfg.duration} s per phase, "
          f"{cfg.idle_conns} idle conns on {cfg.idle_runs} run(s); work dir {cfg.work}", flush=True)
    results = run_all(cfg, specs)
    nginx.stop()

    elapsed = time.monotonic() - started
    ver = versions(cfg, specs)
    text = markdown(cfg, specs, skipped, results, ver, elapsed)
    print("\n" + text)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(text)
    cfg.out.with_suffix(".json").write_text(json.dumps(
        {"versions": ver, "targets": {s.key: s.name for s in specs}, "skipped": skipped,
         "results": results, "medians": medians(results, [s.key for s in specs])}, indent=1, default=str))
    print(f"bench: wrote {cfg.out} and {cfg.out.with_suffix('.json')} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
