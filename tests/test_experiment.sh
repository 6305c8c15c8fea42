#!/bin/bash
# The experiment's harness (bench/experiment), on a tiny sweep: one server
# (grove) at concurrency 10, 1,000 requests, plus gevent pointed at a
# Python that cannot import it. Checks that the run ends well, that the
# table, the JSON and the plot are produced and agree with each other, that
# the missing peer is reported as skipped (in the table, the JSON and the
# report), that grove-load's points are run or reported as skipped, and
# that the consistency check catches a table that disagrees with the JSON.
#
# Usage: tests/test_experiment.sh BIN_DIR
# Exits 77 (skipped) when ab, curl, gnuplot or python3 is missing.
set -u
bin=$1
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for tool in ab curl gnuplot python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh test)"; exit 77; }
done
py=/usr/bin/python3
[ -x $py ] || py=python3
out=$work/out

# The sweep. NICE=0 and no waiting for a quiet machine: a test measures
# nothing, it checks the harness.
BENCH_OUT=$out CONCURRENCY=10 KA_CONCURRENCY=10 REQUESTS=1000 WRK_DURATION=1 RUN_TIMEOUT=30 REPEAT=1 \
    SEED_SERVER=$bin/seed-server GROVE_LOAD=$bin/grove-load GEVENT_PYTHON=$work/no-such-python \
    NICE=0 QUIET_WAIT=0 PORT_BASE=$((20000 + $$ % 10000)) \
    "$top/bench/experiment/experiment.sh" --servers "grove gevent" >"$work/stdout" 2>"$work/stderr"
rc=$?
[ $rc -eq 0 ] || { bad "experiment.sh exited $rc"; cat "$work/stderr"; }
cat "$work/stdout"

# Produced: the table, the report, the JSON, the plot.
for f in report.md runs.jsonl env.json seed-experiment.png plot/ab-grove.dat; do
    [ -s "$out/$f" ] || bad "no $out/$f"
done
[ "$(head -c 8 "$out/seed-experiment.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    bad "seed-experiment.png is not a PNG"
grep -q '^ab, no keep-alive: req/s | failed | server peak RSS' "$work/stdout" || bad "no ab table on the terminal"

# What the runs say, and that the terminal, the report and the plot data say the same.
$py - "$out" "$work/stdout" "$bin/grove-load" <<'EOF' || fail=1
import json, os, sys
out, stdout, gload = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
runs = [json.loads(l) for l in open(os.path.join(out, "runs.jsonl"))]
md = open(os.path.join(out, "report.md")).read()
errs = []
def run(server, client):
    m = [r for r in runs if r["server"] == server and r["client"] == client and r["concurrency"] == 10]
    if len(m) != 1:
        errs.append("%d runs for %s %s c=10" % (len(m), server, client))
        return None
    return m[0]
ab = run("grove", "ab")
if ab:
    if ab["status"] != "ok" or ab["failed"] != 0 or ab["good"] != 1000 or not ab["rps"] > 0:
        errs.append("grove ab: %s" % ab)
    if not ab.get("server_peak_rss_kb"):
        errs.append("grove ab: no peak RSS")
    if "ab -r -n 1000 -c 10 http://127.0.0.1:" not in ab["command"]:
        errs.append("grove ab: command %r" % ab["command"])
    cell = "%d | %d | %.1fM" % (round(ab["rps"]), ab["failed"], ab["server_peak_rss_kb"] / 1024.0)
    row = [l for l in stdout.splitlines() if l.startswith("grove ")]
    if not row or cell not in row[0]:
        errs.append("terminal table: no cell %r in %r" % (cell, row))
    if cell.replace("|", "\\|") not in md:
        errs.append("report.md: no cell %r" % cell)
    dat = open(os.path.join(out, "plot", "ab-grove.dat")).read()
    if "10 %.1f 0 " % ab["rps"] not in dat:
        errs.append("plot data: %r" % dat)
# The findings: computed from the runs (grove alone here: it loses nowhere).
for h in ("## Where grove loses", "## The article's findings, on this machine"):
    if h not in md:
        errs.append("report.md: no section %r" % h)
if "- Nowhere in this run" not in md:
    errs.append("report.md: grove alone, yet it loses somewhere")
# The missing peer: skipped everywhere, with the reason.
for client in ("ab", "grove-load", "grove-load-k", "wrk"):
    g = run("gevent", client)
    if g and (g["status"] != "skipped" or "cannot import gevent" not in g["status_detail"]):
        errs.append("gevent %s: %s" % (client, g))
row = [l for l in stdout.splitlines() if l.startswith("gevent ")]
if not row or "skipped" not in row[0]:
    errs.append("terminal: gevent not shown as skipped: %r" % row)
if "gevent ab: server skipped:" not in stdout or "- gevent, ab: server skipped:" not in md:
    errs.append("the skipped peer is not listed with its reason")
if os.path.exists(os.path.join(out, "plot", "ab-gevent.dat")):
    errs.append("a skipped peer has plot data")
# grove-load: measured when built, else reported as skipped.
gl = run("grove", "grove-load")
if gl:
    if os.access(gload, os.X_OK):
        if gl["status"] != "ok" or gl["failed"] != 0:
            errs.append("grove grove-load: %s" % gl)
    elif gl["status"] != "skipped" or "grove-load" not in gl["status_detail"]:
        errs.append("grove-load absent but not skipped: %s" % gl)
for e in errs:
    print("FAIL: " + e)
print("runs: " + ", ".join("%s/%s %s" % (r["server"], r["client"], r["status"]) for r in runs))
sys.exit(1 if errs else 0)
EOF

# A repeated cell shows its median sample, and hides no failure, memory or
# bad status of the others.
$py - "$top/bench/experiment" <<'EOF' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
import experiment as x
base = dict(server="grove", client="ab", concurrency=10, status="ok", status_detail="")
rs = [dict(base, id=str(i), rps=v, failed=f, server_peak_rss_kb=m)
      for i, (v, f, m) in enumerate([(10.0, 0, 100), (30.0, 2, 300), (20.0, 0, 200)])]
errs = []
c = x.cells(rs)
if len(c) != 1 or (c[0]["rps"], c[0]["failed"], c[0]["server_peak_rss_kb"], c[0]["samples"]) != (20.0, 2, 300, 3):
    errs.append("median of three: %s" % c)
if x.cells(rs[1:])[0]["rps"] != 20.0:
    errs.append("two samples: the lower middle is not shown")
rs[0]["status"], rs[0]["status_detail"] = "timeout", "stopped"
if x.cells(rs)[0]["status"] != "timeout":
    errs.append("a timed-out sample is hidden by the median")
if x.cells(rs[:1]) != rs[:1]:
    errs.append("a cell measured once is not its run")
for e in errs:
    print("FAIL: " + e)
sys.exit(1 if errs else 0)
EOF
REPEAT=0 "$top/bench/experiment/experiment.sh" >/dev/null 2>"$work/repeat0" && bad "REPEAT=0 accepted"
grep -q "REPEAT must be a whole number" "$work/repeat0" || bad "REPEAT=0: $(cat "$work/repeat0")"

# The consistency check passes, and catches a JSON that the table no longer matches.
$py "$top/bench/experiment/experiment.py" check --out "$out" || bad "experiment.py check failed"
f=$(ls "$out"/runs/*-grove-ab-c10.json)
sed -i 's/"rps": [0-9.]*/"rps": 1.5/' "$f"
sed -i '/-grove-ab-c10/s/"rps": [0-9.]*/"rps": 1.5/' "$out/runs.jsonl"
$py "$top/bench/experiment/experiment.py" check --out "$out" >"$work/check" 2>&1
if grep -qF "grove-ab-c10: no cell '2 " "$work/check"; then
    echo "check catches a run that the table does not show: $(head -1 "$work/check")"
else
    bad "check did not notice a run whose numbers differ from the table: $(cat "$work/check")"
fi

[ $fail -eq 0 ] && echo "PASS"
exit $fail
