#!/usr/bin/env python3
"""Soak: many concurrent keep-alive MITM connections with requests flowing, a management reload
every second, RSS sampled every second, and every request matched against the audit file.

Run it through bench/soak.sh (packages, fd limits, private network namespace, clean-up):

  * certificates as bench/bench.py makes them; nginx as the TLS origin (/r/ echoes its path,
    /up/ the uploaded length, /big/ a fixed file; 401 without the real secret);
  * the proxy (--binary) with HTTPS + CONNECT listeners, allowlist, annotate, secrets (the client
    sends a placeholder the proxy must swap), audit to a file, metrics and management listeners;
  * --workers client processes (bench/soak_client.py) open --conns keep-alive connections
    (half HTTPS listener with SNI, half CONNECT + inner TLS; --frac-deny of them to a denied host)
    and keep requests flowing (small GETs, uploads, large downloads; 403s on the denied lanes),
    plus --deny-connect-lanes lanes that CONNECT to the denied host again and again;
  * once all are open, --duration seconds of load; all along, POST /v1/reload every second with
    the config alternating between two variants that allow the same traffic; proxy RSS and fds
    sampled every second;
  * then the clients finish their requests in flight and close; the proxy is stopped (SIGTERM) and
    its audit file is matched: one record per request (same status, right listener), one CONNECT
    record per tunnel, the real secret nowhere.

Prints a table (and writes it to --out, with the raw figures beside it as JSON); exits 1 on any
failed request, failed reload, audit mismatch, proxy exit, or RSS above --max-rss-mib.
"""
import argparse
import http.client
import json
import os
import queue
import resource
import secrets as pysecrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import soak_report
from soak_client import spread
from benchlib import (BENCH, Server, clean_env, install_signal_handlers, make_certs, render, run,
                      session_cpu_seconds, session_kib, track, wait_port)

ROOT = BENCH.parent


def proxy_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Soak:
    def __init__(self, cfg):
        self.cfg = cfg
        self.work = cfg.work
        self.secret = "soak-real-" + pysecrets.token_hex(12)
        self.placeholder = "IRONSH_PROXY_soak-" + pysecrets.token_hex(6)
        self.api_key = pysecrets.token_hex(16)
        self.variant = "a"
        self.samples = []
        self.reloads = []
        self.probe_connects = 0
        self.all_workers = []
        self.waves = []

    # --- set-up -----------------------------------------------------------------------------

    def ports(self):
        p = {"https": 18443, "tunnel": 18888, "http": 18080, "metrics": 19090, "management": 19091}
        if not self.cfg.netns:  # on the shared loopback: take free ports
            for k in p:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    p[k] = s.getsockname()[1]
        p["upstream"] = self.cfg.upstream_port
        return p

    def write_proxy_config(self, variant):
        domains = '["localhost", "a.example"]' if variant == "a" else '["b.example", "localhost"]'
        header = "X-Soak-Lane" if variant == "a" else "X-Soak-Kind"
        tmp = self.proxy_conf.with_suffix(".tmp")
        render("soak-iron-proxy.yaml.in", tmp, {
            "WORK": self.work, "HTTP_PORT": self.p["http"], "HTTPS_PORT": self.p["https"],
            "TUNNEL_PORT": self.p["tunnel"], "METRICS_PORT": self.p["metrics"],
            "MANAGEMENT_PORT": self.p["management"], "AUDIT_PATH": self.audit_path, "DOMAINS": domains,
            "ANNOTATE_HEADER": header, "PLACEHOLDER": self.placeholder})
        os.replace(tmp, self.proxy_conf)  # the proxy never reads a half-written file

    def start_servers(self):
        cfg = self.cfg
        self.p = self.ports()
        self.certs = make_certs(self.work, cfg.binary)
        (self.work / "www").mkdir()
        (self.work / "www" / "big.bin").write_bytes((bytes(range(256)) * (cfg.big_bytes // 256 + 1))[:cfg.big_bytes])
        (self.work / "nginx" / "tmp").mkdir(parents=True)
        render("soak-nginx.conf.in", self.work / "nginx" / "nginx.conf", {
            "WORK": self.work, "NGINX_WORKERS": cfg.nginx_workers, "SECRET": self.secret,
            "NGINX_CONNS": min(40000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100),
            "UPSTREAM_ADDR": f"127.0.0.1:{cfg.upstream_port}"})
        self.nginx = Server("nginx", ["nginx", "-c", str(self.work / "nginx" / "nginx.conf"), "-p",
                                      str(self.work / "nginx"), "-e", str(self.work / "logs" / "nginx.error.log")],
                            self.work)
        if not wait_port(cfg.upstream_port, 20):
            raise SystemExit(f"nginx did not start; see {self.work}/logs/nginx.out")
        self.audit_path = self.work / "logs" / "audit.jsonl"
        self.proxy_conf = self.work / "iron-proxy.yaml"
        self.write_proxy_config("a")
        env = {"SOAK_SECRET": self.secret, "IRON_MANAGEMENT_API_KEY": self.api_key}
        self.proxy = Server("iron-proxy", [str(cfg.binary), "-config", str(self.proxy_conf)], self.work, env=env)
        for k in ("https", "tunnel", "management"):
            if not wait_port(self.p[k], 30):
                raise SystemExit(f"the proxy did not listen on {k} port {self.p[k]}; see {self.work}/logs")
        self.probe("https")
        self.probe("tunnel")

    def probe(self, listener):
        """One curl through the listener, retried for up to ~10 s: the whole chain works."""
        host = "localhost" if self.cfg.upstream_port == 443 else f"localhost:{self.cfg.upstream_port}"
        cmd = ["curl", "-q", "-sS", "--max-time", "10", "--cacert", str(self.certs / "ca.crt"),
               "-H", f"Authorization: Bearer {self.placeholder}"]
        if listener == "https":
            cmd += ["--connect-to", f"localhost:{self.cfg.upstream_port}:127.0.0.1:{self.p['https']}"]
        else:
            cmd += ["-x", f"http://127.0.0.1:{self.p['tunnel']}"]
        path = f"/r/probe-{listener}"
        out = ""
        for _ in range(50):
            r = run(cmd + [f"https://{host}{path}"], 20)
            if listener == "tunnel":
                self.probe_connects += 1
            out = r.stdout + r.stderr
            if r.stdout == f"ok {path}\n":
                return
            time.sleep(0.2)
        raise SystemExit(f"probe through the {listener} listener failed: {out[-300:]}")

    def tune_netns(self):
        """Room for tens of thousands of loopback connections (these sysctls are per namespace)."""
        for key, value in (("net/ipv4/ip_local_port_range", "1024 65000"), ("net/ipv4/tcp_tw_reuse", "1"),
                           ("net/core/somaxconn", "65535"), ("net/ipv4/tcp_max_syn_backlog", "65535")):
            try:
                Path("/proc/sys", key).write_text(value)
            except OSError as e:
                print(f"soak: could not set {key}: {e}", flush=True)

    # --- clients ----------------------------------------------------------------------------

    def start_workers(self, wave):
        """The client processes of one wave; lane numbers (hence paths) never repeat across waves
        and keep their parity (odd lanes use CONNECT)."""
        cfg = self.cfg
        self.workers, self.events = [], queue.Queue()
        n, w = cfg.conns, cfg.workers
        lane = wave * (n + n % 2)
        for i in range(w):
            lanes = n // w + (1 if i < n % w else 0)
            dc = cfg.deny_connect_lanes // w + (1 if i < cfg.deny_connect_lanes % w else 0)
            out, reqs = self.work / f"client{wave}-{i}.json", self.work / f"client{wave}-{i}.requests"
            cmd = [sys.executable, str(BENCH / "soak_client.py"),
                   "--https", f"127.0.0.1:{self.p['https']}", "--tunnel", f"127.0.0.1:{self.p['tunnel']}",
                   "--upstream-port", str(cfg.upstream_port), "--cafile", str(self.certs / "ca.crt"),
                   "--placeholder", self.placeholder, "--first-lane", str(lane), "--lanes", str(lanes),
                   "--deny-connect-lanes", str(dc), "--first-deny-connect-lane", str(i * (dc + 1)),
                   "--frac-deny", str(cfg.frac_deny), "--frac-upload", str(cfg.frac_upload),
                   "--frac-big", str(cfg.frac_big), "--upload-bytes", str(cfg.upload_bytes),
                   "--big-bytes", str(cfg.big_bytes), "--think-min", str(cfg.think_min),
                   "--think-max", str(cfg.think_max), "--open-concurrency", str(cfg.open_concurrency),
                   "--request-timeout", str(cfg.request_timeout),
                   "--max-seconds", str(cfg.open_seconds + cfg.duration + 30),
                   "--out", str(out), "--requests", str(reqs)]
            lane += lanes
            log = open(self.work / "logs" / f"client{wave}-{i}.err", "ab")
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=clean_env(),
                                    start_new_session=True)
            track(proc.pid, f"soak-client-{wave}-{i}", self.work)
            threading.Thread(target=self.pump, args=(i, proc, self.events), daemon=True).start()
            self.workers.append({"proc": proc, "out": out, "requests": reqs, "open": None, "done": False,
                                 "wave": wave})
        self.all_workers += self.workers

    @staticmethod
    def pump(i, proc, events):
        """Forwards worker i's JSON lines to its wave's queue (a thread per worker)."""
        for line in proc.stdout:
            try:
                events.put((i, json.loads(line)))
            except ValueError:
                pass
        events.put((i, {"event": "exit"}))

    def handle_events(self):
        while True:
            try:
                i, ev = self.events.get_nowait()
            except queue.Empty:
                return
            w = self.workers[i]
            if ev["event"] == "open":
                w["open"] = ev
            elif ev["event"] in ("done", "exit"):
                w["done"] = True
                w["open"] = w["open"] or {"open": 0, "seconds": 0}

    def tell_workers(self, line):
        for w in self.workers:
            try:
                w["proc"].stdin.write(line)
                w["proc"].stdin.flush()
            except OSError:
                pass

    # --- the run ----------------------------------------------------------------------------

    def sample(self, phase):
        pid = self.proxy.proc.pid
        self.samples.append({"t": time.monotonic(), "wave": len(self.waves), "phase": phase, "rss_kib": session_kib(self.proxy.sid, "VmRSS"),
                             "fds": proxy_fds(pid), "alive": self.proxy.alive()})

    def reload(self):
        self.variant = "b" if self.variant == "a" else "a"
        self.write_proxy_config(self.variant)
        t0 = time.monotonic()
        status, detail = 0, ""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.p["management"], timeout=10)
            conn.request("POST", "/v1/reload", headers={"Authorization": f"Bearer {self.api_key}"})
            resp = conn.getresponse()
            status, detail = resp.status, resp.read()[:200].decode(errors="replace")
            conn.close()
        except OSError as e:
            detail = f"{type(e).__name__}: {e}"
        self.reloads.append({"status": status, "ms": (time.monotonic() - t0) * 1000, "detail": detail})

    def run_waves(self):
        """--waves times: new clients open --conns connections, load, close; RSS after each."""
        for wave in range(self.cfg.waves):
            self.start_workers(wave)
            times = self.run_load()
            for w in self.workers:
                try:
                    w["proc"].wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            time.sleep(3.0)  # the proxy notices the closed connections
            self.sample("after")
            times["rss_after_kib"] = self.samples[-1]["rss_kib"]
            self.waves.append(times)

    def run_load(self):
        """Ramp (until every worker reports its lanes open), load (--duration s), drain."""
        cfg = self.cfg
        t0 = time.monotonic()
        phase, t_load, t_stop = "open", None, None
        next_tick = t0
        while True:
            now = time.monotonic()
            self.handle_events()
            if phase == "open" and (all(w["open"] for w in self.workers) or now > t0 + cfg.open_seconds):
                phase, t_load = "load", now
                self.tell_workers(b"load\n")
                self.sample("load")
                open_at_load = sum(w["open"]["open"] for w in self.workers if w["open"])
                print(f"soak: wave {len(self.waves) + 1}: {open_at_load} connections open after {now - t0:.1f} s; "
                      f"load for {cfg.duration} s", flush=True)
            if phase == "load" and (now >= t_load + cfg.duration or not self.proxy.alive()):
                phase, t_stop = "drain", now
                self.tell_workers(b"stop\n")
            if phase == "drain" and (all(w["done"] for w in self.workers) or now > t_stop + cfg.request_timeout + 30):
                break
            if now >= next_tick:
                self.sample(phase)
                if phase != "drain":
                    self.reload()
                next_tick += 1.0
                if len(self.samples) % 10 == 0:
                    s = self.samples[-1]
                    print(f"soak: t={now - t0:5.0f}s {phase:5} rss={s['rss_kib'] / 1024:.1f} MiB fds={s['fds']} "
                          f"reloads={len(self.reloads)}", flush=True)
            time.sleep(0.05)
        t_end = time.monotonic()
        return {"open_seconds": t_load - t0, "load_seconds": t_stop - t_load, "drain_seconds": t_end - t_stop,
                "total_seconds": t_end - t0, "open_at_load": open_at_load}

    def malloc_trim(self):
        """RSS after asking glibc to return free heap pages (gdb calls malloc_trim(0) in the proxy):
        what stays is memory still in use, not memory the allocator merely kept."""
        if not self.cfg.malloc_trim:
            return None
        try:
            r = run(["gdb", "-p", str(self.proxy.proc.pid), "-batch", "-nx", "-ex", "call (int)malloc_trim(0)"], 60)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"soak: malloc_trim via gdb failed: {e}", flush=True)
            return None
        if r.returncode != 0:
            print(f"soak: malloc_trim via gdb failed: {r.stderr.strip()[-200:]}", flush=True)
            return None
        time.sleep(1.0)
        return session_kib(self.proxy.sid, "VmRSS")

    def finish(self):
        trimmed = self.malloc_trim()
        metrics = self.scrape_metrics()
        cpu = {"proxy": session_cpu_seconds(self.proxy.sid), "nginx": session_cpu_seconds(self.nginx.sid)}
        hwm = session_kib(self.proxy.sid, "VmHWM")
        self.proxy.stop(grace=30)
        rc = self.proxy.proc.returncode
        self.nginx.stop()
        results = []
        for w in self.all_workers:
            if not w["out"].exists():
                raise SystemExit(f"a client wrote no results; see {self.work}/logs/client*.err")
            results.append(json.loads(w["out"].read_text()))
        clients = soak_report.merge_workers(results)
        peaks = {}
        for w, r in zip(self.all_workers, results):
            peaks[w["wave"]] = peaks.get(w["wave"], 0) + r["open_peak"]
        clients["open_peak"] = max(peaks.values())  # connections of one wave open at once
        audit = soak_report.check_audit(self.audit_path, [w["requests"] for w in self.all_workers], self.secret)
        t = self.figures(clients, audit, metrics, cpu, hwm, rc)
        t["rss"]["trimmed"] = trimmed
        return t

    def scrape_metrics(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.p["metrics"], timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode(errors="replace")
            conn.close()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith(("iron_proxy_config_reloads_total", "iron_proxy_audit_records_written_total",
                                "iron_proxy_client_connections_open")):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def figures(self, clients, audit, metrics, cpu, hwm, rc):
        s = self.samples
        load = [x["rss_kib"] for x in s if x["phase"] == "load" and x["wave"] == len(self.waves) - 1]
        rss = {"idle": s[0]["rss_kib"], "load_start": load[0] if load else None, "peak": max(hwm, *(x["rss_kib"] for x in s)),
               "load_end": load[-1] if load else None, "after": s[-1]["rss_kib"],
               "growth_kib": (sorted(load[-5:])[len(load[-5:]) // 2] - sorted(load[:5])[len(load[:5]) // 2])
               if len(load) >= 10 else None}
        fds = [x["fds"] for x in s if x["fds"] is not None]
        ok = [r for r in self.reloads if r["status"] == 200]
        rel = {k: v for k, v in metrics.items() if "reloads" in k}
        return {
            "waves": self.waves, "open_seconds": self.waves[0]["open_seconds"],
            "load_seconds": sum(w["load_seconds"] for w in self.waves),
            "drain_seconds": sum(w["drain_seconds"] for w in self.waves),
            "total_seconds": sum(w["total_seconds"] for w in self.waves), "clients": clients, "audit": audit, "rss": rss, "cpu": cpu,
            "fds": {"idle": s[0]["fds"], "peak": max(fds) if fds else None, "after": s[-1]["fds"]},
            "reloads_ok": len(ok), "reloads_failed": len(self.reloads) - len(ok),
            "reload_failures": [r for r in self.reloads if r["status"] != 200][:5],
            "reload_max_ms": max((r["ms"] for r in self.reloads), default=0.0),
            "conns_open_after": sum(v for k, v in metrics.items() if k.startswith("iron_proxy_client_connections_open"))
            if metrics else None,
            "metrics": metrics, "metrics_reloads": ", ".join(f"{k.split('{')[-1].rstrip('}')}: {v:.0f}"
                                                             for k, v in rel.items()),
            "open_at_load": min(w["open_at_load"] for w in self.waves),
            "denied_lanes": sum(1 for i in range(self.cfg.conns) if spread(i // 2, self.cfg.frac_deny)),
            "probe_connects": self.probe_connects,
            "proxy_exit": "running until stopped, then exit 0" if rc == 0 and all(x["alive"] for x in s)
            else f"exit status {rc}; alive in every sample: {all(x['alive'] for x in s)}",
            "proxy_ok": rc == 0 and all(x["alive"] for x in s),
        }


def verdict(cfg, t):
    """Problems that make the run fail (empty list: pass)."""
    c = t["clients"]
    p = []
    if sum(c["failures"].values()):
        p.append(f"{sum(c['failures'].values())} failures: {dict(c['failures'])}; e.g. {c['examples'][:3]}")
    if t["open_at_load"] < cfg.conns:
        p.append(f"only {t['open_at_load']} of {cfg.conns} connections were open when the load phase began")
    if t["reloads_failed"] or not t["reloads_ok"]:
        p.append(f"{t['reloads_failed']} reloads failed (of {t['reloads_ok'] + t['reloads_failed']}): "
                 f"{t['reload_failures']}")
    if t["conns_open_after"]:
        p.append(f"the proxy still counts {t['conns_open_after']:.0f} client connections open after every client closed")
    if not t["proxy_ok"]:
        p.append(f"proxy: {t['proxy_exit']}")
    if cfg.max_rss_mib and t["rss"]["peak"] / 1024 > cfg.max_rss_mib:
        p.append(f"peak RSS {t['rss']['peak'] / 1024:.1f} MiB > --max-rss-mib {cfg.max_rss_mib}")
    p += soak_report.audit_problems(t["audit"], c, t["probe_connects"])
    return p


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--binary", default=str(ROOT / "build" / "iron-proxy"), type=Path)
    ap.add_argument("--conns", type=int, default=10000, help="keep-alive MITM connections")
    ap.add_argument("--duration", type=int, default=60, help="seconds of load once all are open")
    ap.add_argument("--waves", type=int, default=1, help="open, load and close this many times against the "
                    "same proxy (RSS after each wave: retained vs leaked memory)")
    ap.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2), help="client processes")
    ap.add_argument("--deny-connect-lanes", type=int, default=None, help="default: conns / 200")
    ap.add_argument("--frac-deny", type=float, default=0.05, help="share of connections to a denied host")
    ap.add_argument("--frac-upload", type=float, default=0.03, help="share of allowed requests that POST")
    ap.add_argument("--frac-big", type=float, default=0.02, help="share of allowed requests for --big-bytes")
    ap.add_argument("--upload-bytes", type=int, default=64 * 1024)
    ap.add_argument("--big-bytes", type=int, default=1024 * 1024)
    ap.add_argument("--think-min", type=float, default=5.0, help="seconds between a connection's requests")
    ap.add_argument("--think-max", type=float, default=15.0)
    ap.add_argument("--open-concurrency", type=int, default=100, help="handshakes in flight per client process")
    ap.add_argument("--open-seconds", type=int, default=300, help="limit for opening all connections")
    ap.add_argument("--request-timeout", type=float, default=120.0)
    ap.add_argument("--malloc-trim", action="store_true", help="at the end, have gdb call malloc_trim(0) in the "
                    "proxy and report the RSS left (memory in use vs kept by the allocator)")
    ap.add_argument("--max-rss-mib", type=float, default=0, help="fail if the proxy's peak RSS exceeds this")
    ap.add_argument("--nginx-workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--upstream-port", type=int, default=443)
    ap.add_argument("--netns", action="store_true", help="we are in a fresh network namespace: bring lo up")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "soak-latest.md")
    cfg = ap.parse_args()
    if cfg.deny_connect_lanes is None:
        cfg.deny_connect_lanes = max(1, cfg.conns // 200)
    cfg.work = cfg.work.resolve()
    cfg.binary = cfg.binary.resolve()
    return cfg


def check_fd_limit(cfg):
    """The proxy holds one fd per client connection plus its upstream connections (about as many
    as requests in flight, pooled) and the clients' share is split over the workers."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = cfg.conns + cfg.deny_connect_lanes + 1000
    if soft < need:
        raise SystemExit(f"fd limit {soft} < {need} needed for {cfg.conns} connections; run through bench/soak.sh")
    if soft < 2 * need:
        print(f"soak: note: fd limit {soft} leaves the proxy {soft - need} descriptors for upstream connections "
              f"(the hard limit could not be raised further)", flush=True)


def user_args():
    """The arguments as given to soak.sh (without the ones it adds)."""
    out, skip = [], False
    for a in sys.argv[1:]:
        if skip or a == "--netns":
            skip = False
            continue
        if a == "--work":
            skip = True
            continue
        out.append(a)
    return out


def main():
    cfg = parse_args()
    install_signal_handlers()
    check_fd_limit(cfg)
    (cfg.work / "logs").mkdir(parents=True, exist_ok=True)
    soak = Soak(cfg)
    if cfg.netns:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
        soak.tune_netns()
    soak.start_servers()
    print(f"soak: {cfg.conns} keep-alive connections + {cfg.deny_connect_lanes} denied-CONNECT lanes, "
          f"{cfg.workers} client processes, {cfg.waves} × {cfg.duration} s of load, proxy {cfg.binary}; work dir {cfg.work}",
          flush=True)
    soak.sample("idle")
    soak.run_waves()
    t = soak.finish()
    problems = verdict(cfg, t)
    text = "\n".join([f"# iron-proxy soak — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
                      f"`bench/soak.sh {' '.join(user_args())}`", "",
                      soak_report.table(cfg, t), "",
                      "Result: " + ("PASS" if not problems else "FAIL"), *[f"- {x}" for x in problems], ""])
    print("\n" + text, flush=True)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(text)
    slim = {k: v for k, v in t.items() if k != "audit"}
    slim["audit"] = {k: (v[:20] if isinstance(v, list) else v) for k, v in t["audit"].items()}
    cfg.out.with_suffix(".json").write_text(json.dumps({"args": vars(cfg), "figures": slim, "samples": soak.samples,
                                                        "reloads": soak.reloads}, indent=1, default=str))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
