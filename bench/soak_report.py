"""bench/soak.py's bookkeeping: merge the workers' counters, match the audit file against the
requests the workers sent, and render the table and the verdict."""
import json
import math
from collections import Counter

PROBE_PREFIX = "/r/probe"
ANSWERED = {"ok", "unexpected_status", "bad_body"}  # outcomes where the client got a whole response
ANNOTATE_HEADERS = {"header:X-Soak-Lane": "a", "header:X-Soak-Kind": "b"}  # the two config variants


def merge_workers(results):
    """Sum of the workers' JSON counters."""
    total = {"sent": 0, "by_kind": Counter(), "by_status": Counter(), "failures": Counter(), "examples": [],
             "connects": Counter(), "deny_connect_status": Counter(), "open_failures": 0, "reconnects": 0,
             "closed_by_proxy": 0, "open_peak": 0, "bytes_up": 0, "bytes_down": 0, "latency_hist": Counter(),
             "cpu_seconds": 0.0}
    for r in results:
        for k in ("sent", "open_failures", "reconnects", "closed_by_proxy", "open_peak", "bytes_up", "bytes_down",
                  "cpu_seconds"):
            total[k] += r[k]
        for k in ("by_kind", "by_status", "failures", "connects", "deny_connect_status", "latency_hist"):
            total[k].update(r[k])
        total["examples"] += r["examples"][:5]
    return total


def latency_ms(hist, q):
    """Upper edge of the 1.1^k ms bucket holding quantile q (±10%)."""
    n = sum(hist.values())
    if not n:
        return None
    seen = 0
    for k in sorted(hist, key=int):
        seen += hist[k]
        if seen >= q * n:
            return math.pow(1.1, int(k) + 1)
    return None


def read_sent(files):
    """path -> (status, outcome) over the workers' request logs."""
    sent = {}
    for f in files:
        with open(f) as fh:
            for line in fh:
                path, status, outcome = line.split()
                sent[path] = (int(status), outcome)
    return sent


def check_audit(audit_path, request_files, secret):
    """Every request audited exactly once, with the status the client saw and the right listener."""
    sent = read_sent(request_files)
    seen = Counter()
    out = {"records": 0, "inner": 0, "probes": 0, "unknown": [], "status_mismatch": [], "listener_mismatch": [],
           "connect": Counter(), "annotated": Counter(), "secret_leaks": 0, "unparsable": 0}
    with open(audit_path, errors="replace") as f:
        for line in f:
            if secret in line:
                out["secret_leaks"] += 1
            try:
                rec = json.loads(line)
            except ValueError:
                out["unparsable"] += 1
                continue
            if rec.get("msg") != "request":
                continue
            out["records"] += 1
            check_record(rec, sent, seen, out)
    out["sent"] = len(sent)
    out["missing"] = sorted(p for p, (_, o) in sent.items() if o in ANSWERED and not seen[p])
    out["duplicated"] = sorted(p for p, c in seen.items() if c > 1)
    # Requests that got no whole response may or may not have reached the proxy: 0 or 1 record.
    out["unanswered_audited"] = sum(1 for p, (_, o) in sent.items() if o not in ANSWERED and seen[p])
    out["connect"] = {f"{h} {s}": n for (h, s), n in sorted(out["connect"].items())}
    return out


def check_record(rec, sent, seen, out):
    a = rec["audit"]
    if a["method"] == "CONNECT":
        out["connect"][(a["host"], a["status_code"])] += 1
        return
    path = a["path"]
    if path.startswith(PROBE_PREFIX):
        out["probes"] += 1
        return
    if path not in sent:
        out["unknown"].append(path)
        return
    out["inner"] += 1
    seen[path] += 1
    status, outcome = sent[path]
    if outcome in ANSWERED and a["status_code"] != status:
        out["status_mismatch"].append(f"{path}: audit {a['status_code']}, client {status}")
    lane = int(path.split("/")[2])
    if ("tunnel" in rec) != (lane % 2 == 1):  # odd lanes go through CONNECT
        out["listener_mismatch"].append(path)
    for tr in rec.get("request_transforms") or []:
        if tr.get("name") == "annotate":
            for key in tr.get("annotations") or {}:
                out["annotated"][ANNOTATE_HEADERS.get(key, key)] += 1


def audit_problems(audit, clients, probe_connects):
    """Human-readable audit mismatches (empty when the audit tells the whole truth)."""
    p = []
    if audit["sent"] != clients["sent"]:
        p.append(f"workers logged {audit['sent']} request paths but counted {clients['sent']} sent")
    if audit["missing"]:
        p.append(f"{len(audit['missing'])} answered requests have no audit record, e.g. {audit['missing'][:3]}")
    if audit["duplicated"]:
        p.append(f"{len(audit['duplicated'])} requests have several records, e.g. {audit['duplicated'][:3]}")
    if audit["unknown"]:
        p.append(f"{len(audit['unknown'])} records for paths never sent, e.g. {audit['unknown'][:3]}")
    if audit["status_mismatch"]:
        p.append(f"{len(audit['status_mismatch'])} records disagree with the client's status, "
                 f"e.g. {audit['status_mismatch'][:3]}")
    if audit["listener_mismatch"]:
        p.append(f"{len(audit['listener_mismatch'])} records on the wrong listener (tunnel block), "
                 f"e.g. {audit['listener_mismatch'][:3]}")
    if audit["secret_leaks"]:
        p.append(f"the real secret appears on {audit['secret_leaks']} audit lines")
    if audit["unparsable"]:
        p.append(f"{audit['unparsable']} audit lines are not JSON")
    conn = clients["connects"]
    allowed_connects = sum(n for k, n in audit["connect"].items() if k.endswith(" 200"))
    lo, hi = conn["tunnel"] + probe_connects, conn["tunnel"] + conn["tunnel_failed"] + probe_connects
    if not lo <= allowed_connects <= hi:
        p.append(f"{allowed_connects} allowed CONNECT records, expected {lo}" + (f"..{hi}" if hi != lo else ""))
    denied_connects = sum(n for k, n in audit["connect"].items() if k.endswith(" 403"))
    if denied_connects != sum(clients["deny_connect_status"].values()):
        p.append(f"{denied_connects} denied CONNECT records, {sum(clients['deny_connect_status'].values())} "
                 f"denied CONNECTs answered")
    others = {k: n for k, n in audit["connect"].items() if not k.endswith((" 200", " 403"))}
    if others:
        p.append(f"unexpected CONNECT records: {others}")
    return p


def mib(kib):
    return f"{kib / 1024:.1f}" if kib is not None else "–"


def table(cfg, t):
    """Markdown table of one soak run (`t`: the figures soak.py gathered)."""
    c, a, r = t["clients"], t["audit"], t["rss"]
    fail_total = sum(c["failures"].values())
    lat50, lat99 = latency_ms(c["latency_hist"], 0.5), latency_ms(c["latency_hist"], 0.99)
    rows = [
        ("keep-alive MITM connections", f"{cfg.conns:,} (HTTPS listener {cfg.conns - cfg.conns // 2:,}, "
                                        f"CONNECT {cfg.conns // 2:,}; denied-host lanes {t['denied_lanes']:,})"),
        ("open at load start (fewest over waves) / peak", f"{t['open_at_load']:,} / {c['open_peak']:,}"),
        ("denied-CONNECT lanes (new conn each)", f"{cfg.deny_connect_lanes}"),
        ("load phase", f"{t['load_seconds']:.1f} s in {len(t['waves'])} wave(s) (+ ramp "
                       f"{' / '.join(format(w['open_seconds'], '.1f') for w in t['waves'])} s, "
                       f"{t['drain_seconds']:.1f} s drain)"),
        ("inner requests sent", f"{c['sent']:,} ({', '.join(f'{k} {v:,}' for k, v in sorted(c['by_kind'].items()))})"),
        ("responses by status", ", ".join(f"{k}: {v:,}" for k, v in sorted(c["by_status"].items())) or "–"),
        ("request rate (whole run)", f"{c['sent'] / max(t['total_seconds'], 1e-9):,.0f} req/s"),
        ("latency p50 / p99", f"{lat50:.1f} / {lat99:.1f} ms" if lat50 else "–"),
        ("denied CONNECTs", f"{c['connects']['deny_connect']:,} "
                            f"({', '.join(f'{k}: {v}' for k, v in sorted(c['deny_connect_status'].items()))})"),
        ("failures", f"{fail_total}" + (f" ({dict(c['failures'])})" if fail_total else "")),
        ("connections closed by the proxy / reconnects", f"{c['closed_by_proxy']} / {c['reconnects']}"),
        ("reloads 200 / failed", f"{t['reloads_ok']} / {t['reloads_failed']} (max {t['reload_max_ms']:.0f} ms)"),
        ("reloads counted by /metrics", t.get("metrics_reloads") or "–"),
        ("proxy RSS MiB: idle / all open / peak / end of load / after close",
         f"{mib(r['idle'])} / {mib(r['load_start'])} / {mib(r['peak'])} / {mib(r['load_end'])} / {mib(r['after'])}"),
        ("proxy RSS MiB after each wave closed", " / ".join(mib(w["rss_after_kib"]) for w in t["waves"])
         + (f"; after malloc_trim(0): {mib(r['trimmed'])}" if r.get("trimmed") else "")),
        ("proxy RSS growth during load (last 5 s − first 5 s)", f"{r['growth_kib'] / 1024:+.1f} MiB"
         if r.get("growth_kib") is not None else "–"),
        ("client connections open after close (/metrics)", "–" if t["conns_open_after"] is None
         else f"{t['conns_open_after']:.0f}"),
        ("proxy fds: idle / peak / after close", f"{t['fds']['idle']} / {t['fds']['peak']} / {t['fds']['after']}"),
        ("CPU s: proxy / clients / nginx", f"{t['cpu']['proxy']:.1f} / {c['cpu_seconds']:.1f} / {t['cpu']['nginx']:.1f}"
                                           f" (proxy {t['cpu']['proxy'] * 1000 / max(c['sent'], 1):.2f} ms per request)"),
        ("audit: inner records / requests sent", f"{a['inner']:,} / {c['sent']:,}"),
        ("audit: missing / duplicated / unknown / wrong status",
         f"{len(a['missing'])} / {len(a['duplicated'])} / {len(a['unknown'])} / {len(a['status_mismatch'])}"),
        ("audit: CONNECT records", ", ".join(f"{k}: {v:,}" for k, v in a["connect"].items()) or "–"),
        ("tunnels opened (+ probes)", f"{c['connects']['tunnel']:,} (+{t['probe_connects']})"),
        ("audit: allowed records annotated by config a / b",
         f"{a['annotated'].get('a', 0):,} / {a['annotated'].get('b', 0):,}"),
        ("real secret in the audit file", f"{a['secret_leaks']} lines"),
        ("proxy exit", t["proxy_exit"]),
    ]
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)
