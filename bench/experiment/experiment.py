#!/usr/bin/env python3
"""The experiment's bookkeeping, for bench/experiment/experiment.sh: it
reads what the clients printed, writes one JSON file per run, and turns
the runs into the terminal table, bench/out/report.md, runs.jsonl and the
plot. Standard library only (any Python 3.7+).

    experiment.py record --out DIR --id ID --server S --client C ... (see record())
    experiment.py report --out DIR [--gnuplot-script FILE]
    experiment.py check --out DIR     consistency of table, JSON and plot data

A run's "failed" is the number of the N requests asked for that did not
get the whole page: requests that failed, that got another status, and
that were never made because the run timed out or the client gave up. Its
req/s counts only those full answers, over the client's time. (ab's own
"Failed requests" can count one request twice, and ab's req/s counts
failures as completions: both are kept in the JSON as ab_failed, ab_rps.)
"""
import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys

CLIENTS = [  # name, keep-alive, title
    ("ab", False, "ab, no keep-alive"),
    ("grove-load", False, "grove-load, no keep-alive"),
    ("grove-load-k", True, "grove-load -k, keep-alive"),
    ("wrk", True, "wrk, keep-alive"),
]
MARK = {"ok": "", "timeout": " T", "client-error": " E", "server-died": " D",
        "server-error": " S"}


# ------------------------------------------------------------ parsing

def num(pattern, text, cast=float, default=None):
    m = re.search(pattern, text, re.M)
    return cast(m.group(1)) if m else default


def parse_ab(text, n, page_len):
    """ab's output, complete or cut short (SIGINT prints what it has; an
    error exit leaves only the progress lines)."""
    r = {}
    complete = num(r"^Complete requests:\s+(\d+)", text, int)
    taken = num(r"^Time taken for tests:\s+([\d.]+)", text)
    if complete is None:
        # No summary: the last "Completed N requests" is a lower bound of
        # what was answered, and nothing tells how many of those failed.
        done = [int(x) for x in re.findall(r"^Completed (\d+) requests", text, re.M)]
        total = num(r"^Total of (\d+) requests completed", text, int)
        r["good"] = max(done + [total or 0, 0])
        r["summary"] = False
        return r
    failed = num(r"^Failed requests:\s+(\d+)", text, int, 0)
    non2xx = num(r"^Non-2xx responses:\s+(\d+)", text, int, 0)
    html = num(r"^HTML transferred:\s+(\d+)", text, int, 0)
    doclen = num(r"^Document Length:\s+(\d+)", text, int)
    good = max(0, complete - non2xx)
    if page_len:
        good = min(good, html // page_len)
    r.update(summary=True, good=good, duration_s=taken, ab_complete=complete,
             ab_failed=failed, ab_non2xx=non2xx, ab_document_length=doclen,
             ab_rps=num(r"^Requests per second:\s+([\d.]+)", text))
    detail = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", text)
    if detail:
        r["ab_failed_detail"] = dict(zip(("connect", "receive", "length", "exceptions"),
                                         map(int, detail.groups())))
    lat = {}
    for p in ("50", "99"):
        v = num(r"^\s+%s%%\s+(\d+)" % p, text, float)
        if v is not None:
            lat["p" + p] = v
    if lat:
        r["latency_ms"] = lat
    return r


def wrk_ms(s):
    v = float(re.match(r"[\d.]+", s).group(0))
    if s.endswith("us"):
        return v / 1000
    if s.endswith("ms"):
        return v
    if s.endswith("m"):
        return v * 60000
    return v * 1000


def parse_wrk(text):
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+),", text, re.M)
    if not m:
        return {"summary": False, "good": 0}
    answered = int(m.group(1))
    dur = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}.get(m.group(3), 1)
    errs = {}
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if s:
        errs = dict(zip(("connect", "read", "write", "timeout"), map(int, s.groups())))
    non2xx = num(r"Non-2xx or 3xx responses:\s+(\d+)", text, int, 0)
    errs["non_2xx"] = non2xx
    r = {"summary": True, "good": max(0, answered - non2xx), "duration_s": dur,
         "failed_detail": errs, "wrk_requests": answered,
         "wrk_rps": num(r"^Requests/sec:\s+([\d.]+)", text)}
    lat = {}
    for p in ("50", "99"):
        mm = re.search(r"^\s+%s%%\s+(\S+)" % p, text, re.M)
        if mm:
            lat["p" + p] = round(wrk_ms(mm.group(1)), 3)
    if lat:
        r["latency_ms"] = lat
    return r


def parse_grove_load(text):
    # The JSON object is the last line that parses as one.
    obj = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                pass
    if obj is None:
        try:
            obj = json.loads(text[text.index("{"):text.rindex("}") + 1])
        except ValueError:
            return {"summary": False, "good": 0}
    failed = obj.get("failed", {})
    ftotal = failed.get("total", 0) if isinstance(failed, dict) else int(failed or 0)
    completed = int(obj.get("completed", 0))
    non2xx = failed.get("non_2xx", 0) if isinstance(failed, dict) else 0
    good = completed
    if isinstance(obj.get("status"), dict) and "2xx" in obj["status"]:
        good = min(good, int(obj["status"]["2xx"]))
    r = {"summary": True, "good": good, "duration_s": obj.get("duration_s"),
         "answered": completed + ftotal, "grove_load_workers": obj.get("workers"),
         "grove_load_document_length": obj.get("document_length"),
         "failed_detail": failed if isinstance(failed, dict) else {"total": ftotal},
         "grove_load": obj, "grove_load_failed": ftotal, "grove_load_non2xx": non2xx}
    lat = obj.get("latency_ms") or {}
    if isinstance(lat, dict):
        r["latency_ms"] = {k: lat[k] for k in ("p50", "p99") if k in lat}
    return r


# ------------------------------------------------------------ record

def record(a):
    raw = open(a.raw, errors="replace").read() if a.raw and os.path.exists(a.raw) else ""
    run = {
        "id": a.id, "server": a.server, "client": a.client,
        "keepalive": a.client in ("wrk", "grove-load-k"),
        "concurrency": a.concurrency, "requests": a.requests,
        "command": a.command, "server_command": a.server_command,
        "time_limit_s": a.time_limit, "date": a.date,
    }
    if a.skip:
        run.update(status="skipped", status_detail=a.skip, rps=None, failed=None,
                   server_peak_rss_kb=None)
        return write_run(a.out, run)
    if a.server_error:
        run.update(status="server-error", status_detail=a.server_error, rps=0.0,
                   failed=a.requests or None, good=0, server_peak_rss_kb=a.rss or None,
                   raw=a.raw_rel)
        return write_run(a.out, run)
    if a.client == "ab":
        p = parse_ab(raw, a.requests, a.page_len)
    elif a.client == "wrk":
        p = parse_wrk(raw)
    else:
        p = parse_grove_load(raw)
    good = p.pop("good", 0)
    dur = p.get("duration_s") or a.elapsed or None
    if not p.get("summary") or not dur:
        dur = a.elapsed
    timed_out = a.exit_code == 124 or a.exit_code == 137
    # grove-load stops itself at its -t limit, exit 0, with fewer answers than asked.
    if a.client.startswith("grove-load") and p.get("summary") and a.exit_code == 0 \
            and p.get("answered", a.requests) < a.requests:
        timed_out = True
    if not a.server_alive:
        status, why = "server-died", "the server was gone when the load ended"
    elif timed_out:
        status, why = "timeout", "stopped at the %d s limit" % (
            a.time_limit if not a.client.startswith("grove-load") else a.grove_load_limit or a.time_limit)
    elif a.exit_code != 0 or not p.get("summary"):
        last = [l for l in raw.splitlines() if l.strip()][-3:]
        status, why = "client-error", "exit %d: %s" % (a.exit_code, " / ".join(last)[:300])
    else:
        status, why = "ok", ""
    if a.client == "wrk":
        failed = sum(v for v in p.get("failed_detail", {}).values())
    else:
        failed = max(0, a.requests - good)
    run.update(status=status, status_detail=why, good=good, failed=failed,
               rps=round(good / dur, 1) if dur else 0.0, duration_s=round(dur or 0, 3),
               elapsed_s=a.elapsed, client_exit=a.exit_code,
               server_peak_rss_kb=a.rss, server_cpu_pct=a.server_cpu,
               client_cpu_pct=a.client_cpu, other_cpu_pct=a.other_cpu, raw=a.raw_rel)
    p.pop("summary", None)
    run.update(p)
    return write_run(a.out, run)


def write_run(out, run):
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    with open(os.path.join(out, "runs", run["id"] + ".json"), "w") as f:
        json.dump(run, f, indent=1, sort_keys=True)
        f.write("\n")
    summary = "%s %s c=%d: %s" % (run["server"], run["client"], run["concurrency"], run["status"])
    if run["status"] != "skipped":
        summary += ", %s req/s, failed %s, peak RSS %s kB" % (
            run.get("rps"), run.get("failed"), run.get("server_peak_rss_kb"))
    if run.get("status_detail"):
        summary += " (%s)" % run["status_detail"]
    print(summary)


# ------------------------------------------------------------ report

def load(out):
    runs = []
    for f in sorted(glob.glob(os.path.join(out, "runs", "*.json"))):
        with open(f) as fh:
            runs.append(json.load(fh))
    env = {}
    if os.path.exists(os.path.join(out, "env.json")):
        with open(os.path.join(out, "env.json")) as fh:
            env = json.load(fh)
    return runs, env


def cells(runs):
    """One record per (server, client, concurrency): the run itself when it
    was measured once; for repeated cells the sample with the median req/s
    (the lower middle of an even count), carrying the most failures, the
    highest peak RSS and the worst status of all its samples, so a repeat
    can hide neither a failure nor a slow run's memory."""
    groups = {}
    for r in runs:
        groups.setdefault((r["server"], r["client"], r["concurrency"]), []).append(r)
    out = []
    for rs in groups.values():
        measured = [r for r in rs if r["status"] != "skipped"]
        if len(measured) < 2:
            out.append((measured or rs)[0])
            continue
        ordered = sorted(measured, key=lambda r: r.get("rps") or 0)
        agg = dict(ordered[(len(ordered) - 1) // 2])
        agg["samples"] = len(ordered)
        agg["rps_samples"] = [r.get("rps") or 0 for r in ordered]
        agg["failed"] = max(r.get("failed") or 0 for r in ordered)
        agg["server_peak_rss_kb"] = max(r.get("server_peak_rss_kb") or 0 for r in ordered)
        bad = [r for r in measured if r["status"] != "ok"]
        if bad:
            agg["status"], agg["status_detail"] = bad[0]["status"], bad[0].get("status_detail", "")
        out.append(agg)
    return out


def cell(r):
    """One table cell: req/s | failed | peak RSS MB, and a status mark."""
    if r is None:
        return "-"
    if r["status"] == "skipped":
        return "skipped"
    rss = r.get("server_peak_rss_kb")
    rss = "%.1fM" % (rss / 1024.0) if rss else "?"
    return "%d | %d | %s%s" % (round(r.get("rps") or 0), r.get("failed") or 0, rss,
                                MARK.get(r["status"], " ?"))


def grid(runs, client):
    sel = [r for r in runs if r["client"] == client]
    servers, concs = [], []
    for r in sel:
        if r["server"] not in servers:
            servers.append(r["server"])
        if r["concurrency"] not in concs:
            concs.append(r["concurrency"])
    concs.sort()
    by = {(r["server"], r["concurrency"]): r for r in sel}
    return servers, concs, by


def text_table(runs, client, title):
    servers, concs, by = grid(runs, client)
    if not servers:
        return ""
    cells = {(s, c): cell(by.get((s, c))) for s in servers for c in concs}
    w = max([len(v) for v in cells.values()] + [len("c=%d" % c) for c in concs]) + 2
    lines = ["%s: req/s | failed | server peak RSS" % title,
             "%-10s" % "server" + "".join(("c=%d" % c).rjust(w) for c in concs)]
    for s in servers:
        lines.append("%-10s" % s + "".join(cells[(s, c)].rjust(w) for c in concs))
    return "\n".join(lines) + "\n"


def md_table(runs, client, title):
    servers, concs, by = grid(runs, client)
    if not servers:
        return ""
    out = ["**%s** (req/s \\| failed \\| server peak RSS)\n" % title,
           "| server | " + " | ".join("c=%d" % c for c in concs) + " |",
           "|---|" + "---:|" * len(concs)]
    for s in servers:
        out.append("| %s | " % s + " | ".join(cell(by.get((s, c))).replace("|", "\\|")
                                             for c in concs) + " |")
    return "\n".join(out) + "\n"


def legend():
    return ("T: stopped at the time limit; E: the client failed; D: the server died; "
            "S: the server did not start or served the wrong bytes; the cell then "
            "counts what was answered before that.")


def targets(runs):
    """The issue's "results that must show", checked on these runs."""
    idx = {(r["server"], r["client"], r["concurrency"]): r for r in runs
           if r["status"] != "skipped"}

    def get(s, c, n):
        r = idx.get((s, c, n))
        return r

    res = []

    def add(name, ok, detail):
        res.append((name, ok, detail))

    for client in ("ab", "grove-load"):
        g = [r for k, r in idx.items() if k[0] == "grove" and k[1] == client]
        if g:
            bad = [r for r in g if r["failed"] or r["status"] != "ok"]
            add("grove: 0 failed requests at every concurrency (%s)" % client, not bad,
                ", ".join("c=%d: %d%s" % (r["concurrency"], r["failed"], MARK[r["status"]])
                          for r in sorted(g, key=lambda r: r["concurrency"])))
            a, b = get("grove", client, 100), get("grove", client, 10000)
            if a and b and a["rps"]:
                add("grove: req/s at c=10000 within 20%% of c=100 (%s)" % client,
                    b["rps"] >= 0.8 * a["rps"], "%.0f vs %.0f (%.2fx)" % (b["rps"], a["rps"], b["rps"] / a["rps"]))
    for client in ("ab", "grove-load", "grove-load-k", "wrk"):
        for peer, need, cmin in (("threaded", 1.0, 0), ("gevent", 3.0, 100), ("nginx", 0.9, 0)):
            if client in ("grove-load-k", "wrk") and peer == "gevent":
                need = 4.0
            pts = []
            for (s, c, n), r in sorted(idx.items(), key=lambda kv: kv[0][2]):
                if s != "grove" or c != client or n < cmin:
                    continue
                o = idx.get((peer, client, n))
                if o is None:
                    continue
                ratio = r["rps"] / o["rps"] if o["rps"] else float("inf")
                pts.append((n, ratio))
            if pts:
                add("grove >= %.1fx %s (%s%s)" % (need, peer, client,
                                                  ", c >= %d" % cmin if cmin else ""),
                    all(x >= need for _, x in pts),
                    ", ".join("c=%d: %s" % (n, "inf" if math.isinf(x) else "%.2fx" % x) for n, x in pts))
    return res


def write_plot_data(out, runs):
    d = os.path.join(out, "plot")
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "*.dat")):
        os.remove(f)
    series = []
    for client, _, _ in CLIENTS:
        servers, concs, by = grid(runs, client)
        for s in servers:
            rows = [by[(s, c)] for c in concs if (s, c) in by and by[(s, c)]["status"] != "skipped"]
            if not rows:
                continue
            name = "%s-%s.dat" % (client, s)
            with open(os.path.join(d, name), "w") as f:
                f.write("# concurrency req/s failed peak_rss_kb status (%s, %s)\n" % (client, s))
                for r in rows:
                    f.write("%d %.1f %d %d %s\n" % (r["concurrency"], r["rps"] or 0, r["failed"] or 0,
                                                     r.get("server_peak_rss_kb") or 0, r["status"]))
            series.append((client, s))
    return series


def plot(out, runs, script):
    series = write_plot_data(out, runs)
    png = os.path.join(out, "seed-experiment.png")
    if os.path.exists(png):
        os.remove(png)
    servers = []
    for _, s in series:
        if s not in servers:
            servers.append(s)
    if not series:
        return "no data to plot"
    concs = sorted({r["concurrency"] for r in runs})
    cmd = ["gnuplot", "-e", "datadir='%s'; out='%s'; servers='%s'; xmin=%g; xmax=%g"
           % (os.path.join(out, "plot"), png, " ".join(servers), concs[0] / 1.5, concs[-1] * 1.5),
           script]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=60)
    except FileNotFoundError:
        return "gnuplot is not installed (apt-get install gnuplot-nox): no plot"
    if p.returncode != 0 or not os.path.exists(png):
        return "gnuplot failed: " + p.stdout.strip()[-500:]
    return ""


def findings(runs):
    """Where grove loses, and what the article said against what this run
    measured: sentences computed from the runs, so the report cannot claim
    more than it measured."""
    idx = {(r["server"], r["client"], r["concurrency"]): r for r in runs
           if r["status"] != "skipped"}
    out = ["## Where grove loses", ""]
    losses = []
    for (s, c, n), r in sorted(idx.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        g = idx.get(("grove", c, n))
        if s != "grove" and g and r["rps"] and g["rps"] < r["rps"]:
            losses.append("- %s, c=%d: %s %.0f req/s against grove's %.0f (grove %.2fx)" % (
                c, n, s, r["rps"], g["rps"], g["rps"] / r["rps"]))
    out += losses or ["- Nowhere in this run: at every client and concurrency grove served the most requests per second."]
    lo, hi = idx.get(("grove", "ab", 10)), idx.get(("grove", "ab", 10000))
    if lo and hi and lo.get("server_peak_rss_kb") and hi.get("server_peak_rss_kb"):
        per = (hi["server_peak_rss_kb"] - lo["server_peak_rss_kb"]) / 9990.0
        out += ["", "Memory: grove's peak RSS grows with the connections it holds at once, "
                "%.1f kB per connection from c=10 to c=10,000 with ab (the touched part of "
                "each green thread's stack and its buffers); nginx keeps a connection in a "
                "small struct, not a stack, and grows far less." % per]
    out.append("")

    def rps(s, c, n):
        r = idx.get((s, c, n))
        return r["rps"] if r and r["rps"] else None

    def failed(s, c):
        return ", ".join("c=%d: %d%s" % (n, idx[(s, c, n)]["failed"], MARK[idx[(s, c, n)]["status"]])
                         for n in sorted(n for (s2, c2, n) in idx if s2 == s and c2 == c))

    out += ["## The article's findings, on this machine", ""]
    gv, pa = rps("gevent", "ab", 10), rps("paste", "ab", 10)
    if gv and pa:
        verdict = ("within 25% of each other: Python's per-request cost, not the concurrency "
                   "model, sets both" if 0.8 <= gv / pa <= 1.25 else
                   "gevent %.1fx Paste" % (gv / pa))
        out.append("- The article: gevent about 4x the thread pool's req/s. Here, at c=10 with ab: "
                   "gevent %.0f, Paste %.0f (%.2fx): %s." % (gv, pa, gv / pa, verdict))
    if any(s == "paste" and c == "ab" for s, c, _ in idx):
        out.append("- The article: the thread pool's failures grew with concurrency. Here Paste "
                   "(listen backlog 5) failed with ab at %s: the backlog of 5 overflows, SYN "
                   "cookies and retransmitted SYNs stall clients, whatever the pool size." % failed("paste", "ab"))
    if any(s == "gevent" and c == "ab" for s, c, _ in idx):
        died = [n for (s2, c2, n), r in idx.items() if s2 == "gevent" and r["status"] == "server-died"]
        out.append("- The article: gevent had no errors to 5,000 connections and crashed near "
                   "10,000. Here gevent (backlog 128) failed with ab at %s; %s." % (
                       failed("gevent", "ab"),
                       "it died at c=%s" % ", ".join(map(str, sorted(died))) if died else
                       "it never died (no run is marked D): it stalls"))
    g100, g10k = rps("grove", "ab", 100), rps("grove", "ab", 10000)
    if g100 and g10k:
        out.append("- The article: req/s stayed flat as concurrency grew, until the failures. "
                   "grove %s: %.0f req/s at c=100, %.0f at c=10,000 (%.2fx); failed with ab: %s." % (
                       "stays flat" if g10k >= 0.8 * g100 else "does not stay flat",
                       g100, g10k, g10k / g100, failed("grove", "ab")))
    abn, gln = rps("nginx", "ab", 100), rps("nginx", "grove-load", 100)
    if abn and gln:
        out.append("- ab is one process on one core: against nginx at c=100 it reached %.0f "
                   "req/s where grove-load reached %.0f. The ab columns of the fast servers "
                   "(grove, threaded, nginx) measure ab as much as the server; the grove-load "
                   "columns measure the servers." % (abn, gln))
    out.append("")
    return out


def report(a):
    runs, env = load(a.out)
    with open(os.path.join(a.out, "runs.jsonl"), "w") as f:
        for r in runs:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    every, runs = runs, cells(runs)
    tables = [text_table(runs, c, t) for c, _, t in CLIENTS]
    tables = [t for t in tables if t]
    skipped = sorted({(r["server"], r["client"], r["status_detail"]) for r in runs
                      if r["status"] == "skipped"})
    problems = [r for r in runs if r["status"] not in ("ok", "skipped")]
    perr = plot(a.out, runs, a.gnuplot_script)
    tg = targets(runs)

    # ---- terminal
    term = ["", "The experiment: %s" % env.get("title", "")]
    term += tables
    term.append(legend())
    if skipped:
        term.append("\nskipped:")
        term += ["  %s %s: %s" % s for s in skipped]
    if problems:
        term.append("\nruns that did not end cleanly:")
        term += ["  %s %s c=%d: %s %s" % (r["server"], r["client"], r["concurrency"], r["status"],
                                         r.get("status_detail", "")) for r in problems]
    if tg:
        term.append("\ntargets (issue 6):")
        term += ["  [%s] %s: %s" % ("ok" if ok else "MISS", n, d) for n, ok, d in tg]
    oth = max([r.get("other_cpu_pct") or 0 for r in every] + [0])
    if oth > 10:
        term.append("\nwarning: other processes used up to %d%% of a core during a run: "
                    "the machine was not quiet" % oth)
    term.append("\nreport: %s/report.md, runs: %s/runs.jsonl, plot: %s" % (
        a.out, a.out, perr or os.path.join(a.out, "seed-experiment.png")))
    print("\n".join(term))

    # ---- report.md
    md = ["# The experiment: green threads vs threads, on this machine", "",
          env.get("title", ""), ""]
    md.append("Date: %s. Wall time of the sweep: %s s." % (env.get("date", "?"), env.get("wall_s", "?")))
    md += ["", "## Results", ""]
    for c, _, t in CLIENTS:
        x = md_table(runs, c, t)
        if x:
            md += [x]
    md += [legend(), ""]
    if not perr:
        md += ["![requests/s and failures against concurrency](seed-experiment.png)", ""]
    else:
        md += ["No plot: %s" % perr, ""]
    if skipped:
        md += ["Skipped:", ""] + ["- %s, %s: %s" % s for s in skipped] + [""]
    if problems:
        md += ["Runs that did not end cleanly:", ""]
        md += ["- %s, %s, c=%d: %s. %s" % (r["server"], r["client"], r["concurrency"], r["status"],
                                          r.get("status_detail", "")) for r in problems]
        md.append("")
    if tg:
        md += ["## Targets (issue 6), checked on these runs", ""]
        md += ["- [%s] %s: %s" % ("x" if ok else " ", n, d) for n, ok, d in tg]
        md.append("")
    md += findings(runs)
    md += ["## Every run", "",
           "A cell measured more than once shows, in the tables above, its median "
           "sample's req/s, the most failures and the highest peak RSS of its samples.", "",
           "| server | client | c | status | req/s | failed | the client's failed | p50 ms | p99 ms | peak RSS kB | CPU % srv/cli/oth |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in every:
        if r["status"] == "skipped":
            md.append("| %s | %s | %d | skipped: %s | | | | | | | |" % (
                r["server"], r["client"], r["concurrency"], r["status_detail"]))
            continue
        lat = r.get("latency_ms") or {}
        md.append("| %s | %s | %d | %s | %.0f | %s | %s | %s | %s | %s | %s/%s/%s |" % (
            r["server"], r["client"], r["concurrency"], r["status"], r.get("rps") or 0,
            r.get("failed"), r.get("ab_failed", r.get("grove_load_failed", "")), lat.get("p50", ""), lat.get("p99", ""),
            r.get("server_peak_rss_kb"), r.get("server_cpu_pct", ""), r.get("client_cpu_pct", ""),
            r.get("other_cpu_pct", "")))
    md += ["", "## Machine", ""]
    for k in ("cpu", "cores", "memory", "os", "kernel", "nice", "sweep"):
        if k in env:
            md.append("- %s: %s" % (k, env[k]))
    md += ["", "## Versions", ""]
    for k, v in sorted(env.get("versions", {}).items()):
        md.append("- %s: %s" % (k, v))
    md += ["", "## Servers", ""]
    for k, v in env.get("servers", {}).items():
        md.append("- %s: %s" % (k, v))
    md += ["", "## Kernel and process limits (checked before the run)", "", "```"]
    md.append(env.get("kernel_check", "").rstrip())
    md += ["```", "", "## Exact commands", ""]
    md.append("Servers (P: a fresh port per run; C: the concurrency):")
    md += ["", "```"] + env.get("server_commands", []) + ["```", ""]
    md.append("Clients (each run's exact command is in its JSON, key `command`):")
    md += ["", "```"] + env.get("client_commands", []) + ["```", ""]
    md.append("Every run's JSON: runs/*.json and runs.jsonl; what each client printed: raw/.")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return 0


# ------------------------------------------------------------ check

def check(a):
    """The table, the JSON and the plot agree: every run is in runs.jsonl,
    every measured run is a cell of report.md with its numbers and a point
    of the plot data, and every skipped run shows as skipped."""
    runs, _ = load(a.out)
    errs = []
    if not runs:
        errs.append("no runs")
    with open(os.path.join(a.out, "runs.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    if lines != runs:
        errs.append("runs.jsonl differs from runs/*.json")
    md = open(os.path.join(a.out, "report.md")).read()
    for r in runs:
        if r["status"] != "skipped" and "| %s | %s | %d | %s | %.0f |" % (
                r["server"], r["client"], r["concurrency"], r["status"], r.get("rps") or 0) not in md:
            errs.append("%s: not in report.md's list of every run" % r["id"])
    for r in cells(runs):
        c = cell(r).replace("|", "\\|")
        # Whole cells only: "2 | 0 | 2.0M" must not match inside "22 | 0 | 2.0M".
        row = [l for l in md.splitlines()
               if l.startswith("| %s | " % r["server"]) and "| %s |" % c in l]
        if not row:
            errs.append("%s: no cell '%s' in report.md" % (r["id"], c))
        if r["status"] == "skipped":
            if "- %s, %s: %s" % (r["server"], r["client"], r["status_detail"]) not in md:
                errs.append("%s: skipped but not listed as skipped" % r["id"])
            continue
        dat = os.path.join(a.out, "plot", "%s-%s.dat" % (r["client"], r["server"]))
        want = "%d %.1f %d" % (r["concurrency"], r["rps"] or 0, r["failed"] or 0)
        if not os.path.exists(dat) or not any(l.startswith(want + " ") for l in open(dat)):
            errs.append("%s: no point '%s' in %s" % (r["id"], want, dat))
    png = os.path.join(a.out, "seed-experiment.png")
    if any(r["status"] != "skipped" for r in runs):
        if not os.path.exists(png) or open(png, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
            errs.append("no PNG plot at " + png)
    for e in errs:
        print("check: " + e)
    print("check: %d runs, %s" % (len(runs), "consistent" if not errs else "%d problems" % len(errs)))
    return 1 if errs else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("record")
    r.add_argument("--out", required=True)
    r.add_argument("--id", required=True)
    r.add_argument("--server", required=True)
    r.add_argument("--client", required=True)
    r.add_argument("--concurrency", type=int, required=True)
    r.add_argument("--requests", type=int, default=0)
    r.add_argument("--command", default="")
    r.add_argument("--server-command", default="")
    r.add_argument("--date", default="")
    r.add_argument("--time-limit", type=int, default=0)
    r.add_argument("--grove-load-limit", type=int, default=0)
    r.add_argument("--skip", default="")
    r.add_argument("--server-error", default="")
    r.add_argument("--raw", default="")
    r.add_argument("--raw-rel", default="")
    r.add_argument("--page-len", type=int, default=0)
    r.add_argument("--exit-code", type=int, default=0)
    r.add_argument("--elapsed", type=float, default=0)
    r.add_argument("--server-alive", type=int, default=1)
    r.add_argument("--rss", type=int, default=0)
    r.add_argument("--server-cpu", type=int, default=0)
    r.add_argument("--client-cpu", type=int, default=0)
    r.add_argument("--other-cpu", type=int, default=0)
    p = sub.add_parser("report")
    p.add_argument("--out", required=True)
    p.add_argument("--gnuplot-script", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                            "seed-experiment.gp"))
    c = sub.add_parser("check")
    c.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "record":
        return record(a) or 0
    if a.cmd == "report":
        return report(a)
    if a.cmd == "check":
        return check(a)
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
