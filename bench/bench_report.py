"""The benchmark's report: one table of medians over the runs with ratio columns (a new ÷ old column
per extra build in an A/B run), the issue-6 checks, the A/B limits, notes and problems, as Markdown."""
import datetime
import os
import platform
import statistics

# report

ROWS = [
    # key, label, better ('hi'/'lo'), ratio vs direct?, format
    ("ka1_rps", "keep-alive 1 KiB c=1: req/s", "hi", True, "{:.0f}"),
    ("ka1_p50", "keep-alive 1 KiB c=1: p50 ms (hey)", "lo", True, "{:.2f}"),
    ("ka1_p99", "keep-alive 1 KiB c=1: p99 ms (hey)", "lo", True, "{:.2f}"),
    ("probe_p50", "c=1 p50 µs (1-conn probe)", "lo", True, "{:.0f}"),
    ("probe_p99", "c=1 p99 µs (1-conn probe)", "lo", True, "{:.0f}"),
    ("added_p50", "c=1 p50 µs added over direct", "lo", False, "{:.0f}"),
    ("ka32_rps", "keep-alive 1 KiB c=32: req/s", "hi", True, "{:.0f}"),
    ("ka32_p50", "keep-alive 1 KiB c=32: p50 ms", "lo", True, "{:.2f}"),
    ("ka32_p99", "keep-alive 1 KiB c=32: p99 ms", "lo", True, "{:.2f}"),
    ("big_mibs", "10 MiB download c=1: MiB/s", "hi", True, "{:.0f}"),
    ("up_mibs", "10 MiB upload c=1: MiB/s", "hi", True, "{:.0f}"),
    ("newconn_rps", "new TLS conn per request c=32: req/s", "hi", True, "{:.0f}"),
    ("h2_rps", "HTTP/2 1 KiB, 32 streams on one conn (hey -h2): req/s", "hi", True, "{:.0f}"),
    ("cpu_per_10k", "proxy CPU s per 10k req (c=32 keep-alive)", "lo", False, "{:.2f}"),
    ("others_cpu_per_10k", "hey + nginx CPU s per 10k req (c=32 keep-alive)", None, False, "{:.2f}"),
    ("ka32_busy_pct", "machine CPU busy % (c=32 keep-alive phase)", None, False, "{:.0f}"),
    ("peak_rss", "proxy peak RSS MiB (VmHWM, before idle test)", "lo", False, "{:.1f}"),
    ("idle_rss", "proxy RSS MiB with N idle MITM conns", "lo", False, "{:.1f}"),
    ("idle_kib", "proxy KiB per idle MITM conn", "lo", False, "{:.1f}"),
]


def flatten(r):
    """One run's result -> {row key: value} (only valid measurements)."""
    v = {}

    def take(name, sub, field, key):
        m = r.get(sub) or {}
        if m.get("invalid") or m.get(field) is None:
            return
        v[key] = m[field]

    take("ka1", "ka1", "rps", "ka1_rps")
    take("ka1", "ka1", "p50_ms", "ka1_p50")
    take("ka1", "ka1", "p99_ms", "ka1_p99")
    take("ka32", "ka32", "rps", "ka32_rps")
    take("ka32", "ka32", "p50_ms", "ka32_p50")
    take("ka32", "ka32", "p99_ms", "ka32_p99")
    take("big", "big", "mibs", "big_mibs")
    take("upload", "upload", "mibs", "up_mibs")
    take("newconn", "newconn", "rps", "newconn_rps")
    take("h2", "h2", "rps", "h2_rps")
    if r.get("h2_version"):
        v["h2_version"] = r["h2_version"]
    p = r.get("probe") or {}
    if "p50_us" in p:
        v["probe_p50"] = p["p50_us"]
        v["probe_p99"] = p["p99_us"]
    if r.get("cpu_per_10k") is not None and not (r.get("ka32") or {}).get("invalid"):
        v["cpu_per_10k"] = r["cpu_per_10k"]
    for k in ("others_cpu_per_10k", "ka32_busy_pct"):
        if r.get(k) is not None and not (r.get("ka32") or {}).get("invalid"):
            v[k] = r[k]
    if r.get("peak_rss_kib"):
        v["peak_rss"] = r["peak_rss_kib"] / 1024
    idle = r.get("idle") or {}
    if idle.get("opened"):
        v["idle_rss"] = idle["rss_after_kib"] / 1024
        v["idle_kib"] = idle["kib_per_conn"]
        v["idle_opened"] = idle["opened"]
    return v


def medians(results, targets):
    med = {}
    for t in targets:
        vals = {}
        for r in results:
            if r["target"] == t:
                for k, x in flatten(r).items():
                    vals.setdefault(k, []).append(x)
        versions_seen = sorted(set(vals.pop("h2_version", [])))
        med[t] = {k: statistics.median(xs) for k, xs in vals.items()}
        med[t]["h2_version"] = "/".join(versions_seen)
        med[t]["_n"] = {k: len(xs) for k, xs in vals.items()}
    if "direct" in med and "probe_p50" in med["direct"]:
        for t in targets:
            if "probe_p50" in med[t]:
                med[t]["added_p50"] = med[t]["probe_p50"] - med["direct"]["probe_p50"]
    return med


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def is_iron(spec):
    return spec.key == "iron" or spec.key.startswith("iron@")


def ratio_columns(specs):
    """(heading, left key, right key, kind): A/B first (each later build ÷ the first), then every
    proxy ÷ direct, then the last iron-proxy build ÷ every other proxy."""
    irons = [s for s in specs if is_iron(s)]
    proxies = [s for s in specs if s.key != "direct"]
    cols = [(f"{s.name} ÷ {irons[0].name}", s.key, irons[0].key, "ab") for s in irons[1:]]
    if any(s.key == "direct" for s in specs):
        cols += [(f"{s.name} ÷ direct", s.key, "direct", "direct") for s in proxies]
    if irons:
        main = irons[-1]
        cols += [(f"{main.name} ÷ {s.name}", main.key, s.key, "other") for s in proxies if not is_iron(s)]
    return cols


def value_cell(cfg, med, t, key, fmt):
    if t == "direct" and key in ("cpu_per_10k", "peak_rss", "idle_rss", "idle_kib", "added_p50"):
        return "n/a" if key != "added_p50" else "0"
    x = med[t].get(key)
    s = fmt.format(x) if x is not None else "–"
    if key == "h2_rps" and x is not None and med[t].get("h2_version") != "2":
        s += f" (HTTP/{med[t].get('h2_version') or '?'})"
    if key in ("idle_rss", "idle_kib") and x is not None:
        opened = med[t].get("idle_opened", 0)
        if opened < cfg.idle_conns:
            s += f" (only {opened:.0f} opened)"
    return s


def table(cfg, med, specs):
    rcols = ratio_columns(specs)
    head = ["metric", "better"] + [s.title for s in specs] + [c[0] for c in rcols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for key, label, better, vs_direct, fmt in ROWS:
        if key.startswith("idle"):
            label = label.replace("N", f"{cfg.idle_conns:,}")
        cells = [label, {"hi": "higher", "lo": "lower"}.get(better, "")]
        cells += [value_cell(cfg, med, s.key, key, fmt) for s in specs]
        for _, a, b, kind in rcols:
            if better is None or (kind == "direct" and not vs_direct):
                cells.append("")
            else:
                cells.append(ratio(med[a].get(key), med[b].get(key)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check(label, ok, detail):
    return f"- {'PASS' if ok else 'MISS'} — {label}: {detail}"


def targets_block(med, specs):
    irons = [s for s in specs if is_iron(s)]
    if not irons or not all(t in med for t in ("squid", "mitm", "direct")):
        return ""
    i, s, m = med[irons[-1].key], med["squid"], med["mitm"]

    def r(a, b):
        return a / b if a and b else 0

    out = [f"Issue 6 targets ({irons[-1].name}, medians of this run):"]
    out.append(check("keep-alive c=32 ≥ 2× Squid", r(i.get("ka32_rps"), s.get("ka32_rps")) >= 2,
                     f"{r(i.get('ka32_rps'), s.get('ka32_rps')):.2f}×"))
    out.append(check("keep-alive c=32 ≥ 8× mitmproxy", r(i.get("ka32_rps"), m.get("ka32_rps")) >= 8,
                     f"{r(i.get('ka32_rps'), m.get('ka32_rps')):.2f}×"))
    add = i.get("added_p50")
    out.append(check("c=1 p50 added over direct ≤ 150 µs", add is not None and add <= 150,
                     f"{add:.0f} µs" if add is not None else "not measured"))
    out.append(check("10 MiB download ≥ 2× Squid", r(i.get("big_mibs"), s.get("big_mibs")) >= 2,
                     f"{r(i.get('big_mibs'), s.get('big_mibs')):.2f}×"))
    out.append(check("new TLS connection per request ≥ 1.5× Squid",
                     r(i.get("newconn_rps"), s.get("newconn_rps")) >= 1.5,
                     f"{r(i.get('newconn_rps'), s.get('newconn_rps')):.2f}×"))
    k = i.get("idle_kib")
    out.append(check("≤ 40 KiB RSS per idle MITM connection", k is not None and k <= 40,
                     f"{k:.1f} KiB" if k is not None else "not measured"))
    return "\n".join(out)


# Issue 18's targets: (label, row, the target to compare with, "≥" or "≤", the bound). A row
# compared with None is checked against the bound itself.
ISSUE18_TARGETS = [
    ("10 MiB download ≥ 1.3× Go", "big_mibs", "go", ">=", 1.3),
    ("10 MiB download ≥ 0.65× direct", "big_mibs", "direct", ">=", 0.65),
    ("10 MiB upload ≥ 1.3× Go", "up_mibs", "go", ">=", 1.3),
    ("10 MiB upload ≥ 0.65× direct", "up_mibs", "direct", ">=", 0.65),
    ("keep-alive c=32 ≥ 4× Go", "ka32_rps", "go", ">=", 4),
    ("keep-alive c=32 ≥ 2.5× Squid", "ka32_rps", "squid", ">=", 2.5),
    ("keep-alive c=32 ≥ 0.55× direct", "ka32_rps", "direct", ">=", 0.55),
    ("proxy CPU per 10k requests ≤ 0.35× Squid", "cpu_per_10k", "squid", "<=", 0.35),
    ("new TLS connection per request ≥ 1.5× Go", "newconn_rps", "go", ">=", 1.5),
    ("new TLS connection per request ≥ 0.85× direct", "newconn_rps", "direct", ">=", 0.85),
    ("≤ 20 KiB RSS per idle MITM connection", "idle_kib", None, "<=", 20),
]


def issue18_block(med, specs):
    irons = [s for s in specs if is_iron(s)]
    if not irons:
        return ""
    i = med[irons[-1].key]
    out = [f"Issue 18 targets ({irons[-1].name}, medians of this run):"]
    for label, key, other, op, bound in ISSUE18_TARGETS:
        mine = i.get(key)
        base = (med.get(other) or {}).get(key) if other else 1.0
        if mine is None or not base:
            out.append(check(label, False, "not measured" if mine is None else f"no {other} figure"))
            continue
        q = mine / base
        ok = q >= bound if op == ">=" else q <= bound
        detail = f"{q:.2f}×" if other else f"{mine:.1f}"
        if key == "idle_kib" and (med.get("go") or {}).get(key):
            detail += f" (Go iron-proxy: {med['go'][key]:.1f})"
        out.append(check(label, ok, detail))
    return "\n".join(out)


# Issue 12's limits for a rewrite: proxy CPU per request and bulk throughput within 5% of the old
# build, memory per idle MITM connection not higher.
AB_LIMITS = [
    ("cpu_per_10k", "proxy CPU s per 10k req (c=32 keep-alive) ≤ 1.05× old", lambda q: q <= 1.05),
    ("big_mibs", "10 MiB download MiB/s ≥ 0.95× old", lambda q: q >= 0.95),
    ("up_mibs", "10 MiB upload MiB/s ≥ 0.95× old", lambda q: q >= 0.95),
    ("idle_kib", "KiB per idle MITM conn ≤ old", lambda q: q <= 1.0),
]


def ab_block(med, specs, runs):
    irons = [s for s in specs if is_iron(s)]
    if len(irons) < 2:
        return ""
    old = irons[0]
    out = []
    for new in irons[1:]:
        out.append(f"A/B limits ({new.name} ÷ {old.name}, medians of {runs} run(s); differences of a few per "
                   f"cent need 5+ runs on a quiet machine):")
        for key, label, ok in AB_LIMITS:
            a, b = med[new.key].get(key), med[old.key].get(key)
            if a is None or not b:
                out.append(check(label, False, "not measured"))
            else:
                out.append(check(label, ok(a / b), f"{a / b:.3f}× ({a:.2f} vs {b:.2f})"))
    return "\n".join(out)


def problems(results, names):
    out = [f"- {names[r['target']]} run {r['run'] + 1}: {r['error']}" for r in results if r.get("error")]
    for r in results:
        who = f"- {names[r['target']]} run {r['run'] + 1}"
        for k in ("ka1", "ka32", "newconn", "big", "upload", "h2"):
            if (r.get(k) or {}).get("invalid"):
                out.append(f"{who} {k}: {r[k]['invalid']}")
        if (r.get("idle") or {}).get("error") or (r.get("idle") or {}).get("failed"):
            out.append(f"{who} idle: {r['idle']}")
        if r.get("died"):
            out.append(f"{who}: the proxy exited during the run")
    return out


def setup_line(cfg, specs, elapsed):
    keys = {s.key for s in specs}
    who = ["iron-proxy: one thread per core"]
    if "squid" in keys:
        who.append(f"Squid workers: {cfg.squid_workers}")
    if "mitm" in keys:
        who.append("mitmproxy: one process (Python asyncio)")
    if "go" in keys:
        who.append("iron-proxy-go: Go's default GOMAXPROCS (one per core)")
    return (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}; client (hey), "
            f"proxy and upstream (nginx, {cfg.nginx_workers} workers) share it. "
            f"{cfg.runs} runs × {cfg.duration} s per phase, medians; idle test with {cfg.idle_conns:,} connections "
            f"on {min(cfg.idle_runs, cfg.runs)} run(s). {'; '.join(who)}. Total wall time {elapsed / 60:.1f} min.")


def markdown(cfg, specs, skipped, results, ver, elapsed):
    med = medians(results, [s.key for s in specs])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"# iron-proxy benchmark — {now}", "", setup_line(cfg, specs, elapsed), "",
          "Versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()), "",
          table(cfg, med, specs), "",
          "Ratios are plain quotients of the medians (left ÷ right); check the `better` column for the direction."]
    if sum(is_iron(s) for s in specs) > 1:
        md.append("The iron-proxy builds ran from one config file with one CA, in the same rotating order as the "
                  "other targets.")
    md += [s.note for s in specs if s.note] + [""]
    for block in (ab_block(med, specs, cfg.runs), issue18_block(med, specs), targets_block(med, specs)):
        if block:
            md += [block, ""]
    if skipped:
        md += ["Targets skipped:", *[f"- {why}" for why in skipped], ""]
    errors = problems(results, {s.key: s.name for s in specs})
    if errors:
        md += ["Problems during the run:", *errors, ""]
    return "\n".join(md)
