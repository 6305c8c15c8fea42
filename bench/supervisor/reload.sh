#!/usr/bin/env bash
# bench/supervisor/reload.sh: grove's supervisor under load
# (docs/supervisor.md#measured). seed-server --workers W serves; grove-load
# puts two loads on it at once, keep-alive (-k -c CONNS) and without
# keep-alive (-c CLOSE_CONNS), for DURATION seconds each, in four parts:
#
#   baseline  no signal: failures and p99 latency to compare with
#   reload    HUPS SIGHUPs HUP_GAP seconds apart: failures, p99 / baseline
#   resize    W -> W/2 -> W (SIGTTOU, then SIGTTIN), a step every HUP_GAP s
#   kill      SIGKILL of the oldest worker every second for KILL_SECS s:
#             failures, and each respawn's time from the kill to the new
#             worker's "ready" (the master's log)
#   scale     requests/s with W = 1 .. SCALE_MAX workers (keep-alive,
#             -c 100, SCALE_SECS s each), as a ratio to W = 1
#   trap      the SO_REUSEPORT trap (reuseport_trap.py): 200 queued
#             connections, one of two listeners closed: reset with two
#             SO_REUSEPORT sockets, served with one shared socket
#
# and the master's CPU time over the reload part (utime + stime from
# /proc), as a share of one core.
#
#   bench/supervisor/reload.sh [--json] [--quick]
#
# Environment: WORKERS (4), CONNS (1000), CLOSE_CONNS (50), DURATION (60),
# HUPS (10), HUP_GAP (3), KILL_SECS (30), SCALE_MAX (nproc), SCALE_SECS
# (10), PARTS ("trap baseline reload resize kill scale"), SEED_SERVER,
# GROVE_LOAD, BUILD=0 (no make). QUICK=1 or --quick: DURATION 12, HUPS 3,
# KILL_SECS 8, SCALE_SECS 4. Text to stdout; with --json one JSON object.
set -euo pipefail
{  # read whole before it runs: editing the file cannot change a run in progress
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh" # stop_pid, next_port, print_usage

json=0
quick=${QUICK:-0}
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1 ;;
        --quick) quick=1 ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        *) echo "reload.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    dur=${DURATION:-12}; hups=${HUPS:-3}; kill_secs=${KILL_SECS:-8}; scale_secs=${SCALE_SECS:-4}
else
    dur=${DURATION:-60}; hups=${HUPS:-10}; kill_secs=${KILL_SECS:-30}; scale_secs=${SCALE_SECS:-10}
fi
workers=${WORKERS:-4}
conns=${CONNS:-1000}
close_conns=${CLOSE_CONNS:-50}
gap=${HUP_GAP:-3}
scale_max=${SCALE_MAX:-$(nproc)}
parts=${PARTS:-trap baseline reload resize kill scale}
seed=${SEED_SERVER:-build/bin/seed-server}
gl=${GROVE_LOAD:-build/bin/grove-load}
port=${PORT_BASE:-18900}
[ "${BUILD:-1}" = 0 ] || nice make build >/dev/null
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill -9 $srv 2>/dev/null; rm -rf "$work"' EXIT
say() { [ "$json" = 1 ] || echo "$@"; }

# start_server W: seed-server --workers W on a fresh port; sets srv, url.
start_server() {
    port=$(next_port "$port")
    "$seed" --mode grove --concurrency 20000 --host 127.0.0.1 --port "$port" \
        --workers "$1" --drain-ms 10000 >"$work/server.log" 2>&1 &
    srv=$!
    url=http://127.0.0.1:$port/
    for _ in $(seq 1 200); do
        [ "$(grep -c ' ready after ' "$work/server.log")" -ge "$1" ] && return 0
        sleep 0.05
    done
    echo "reload.sh: seed-server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}

stop_server() { kill -TERM "$srv"; wait "$srv" || true; srv=; }

# loads NAME: both loads for dur seconds, in the background.
loads() {
    "$gl" -k -r -c "$conns" -d "$dur" --json --no-progress "$url" >"$work/$1-ka.json" 2>"$work/$1-ka.err" &
    ka=$!
    "$gl" -r -c "$close_conns" -d "$dur" --json --no-progress "$url" >"$work/$1-close.json" 2>"$work/$1-close.err" &
    nka=$!
}
wait_loads() { wait "$ka" || true; wait "$nka" || true; }

master_ticks() { awk '{print $14 + $15}' "/proc/$srv/stat"; }

# summary NAME: one JSON object per load of the part.
summary() {
    /usr/bin/python3 - "$work/$1" <<'EOF'
import json, sys
base = sys.argv[1]
out = {}
for kind in ("ka", "close"):
    try:
        r = json.load(open("%s-%s.json" % (base, kind)))
    except Exception as e:
        out[kind] = {"error": "no report: %s" % e}
        continue
    out[kind] = {"requests": r["completed"], "failed": r["failed"]["total"],
                 "rps": r["requests_per_sec"], "p50_ms": r["latency_ms"]["p50"],
                 "p99_ms": r["latency_ms"]["p99"]}
print(json.dumps(out))
EOF
}

results="{}"
add() { results=$(/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r[sys.argv[2]]=json.loads(sys.argv[3]); print(json.dumps(r))' "$results" "$1" "$2"); }

for part in $parts; do
    case $part in
    baseline)
        start_server "$workers"
        loads baseline
        wait_loads
        stop_server
        add baseline "$(summary baseline)"
        ;;
    reload)
        start_server "$workers"
        t0=$(master_ticks); s0=$(date +%s.%N)
        loads reload
        sleep $(((dur - hups * gap) / 2 > 0 ? (dur - hups * gap) / 2 : 1))
        for _ in $(seq 1 "$hups"); do kill -HUP "$srv"; sleep "$gap"; done
        wait_loads
        t1=$(master_ticks); s1=$(date +%s.%N)
        stop_server
        r=$(summary reload)
        cpu=$(/usr/bin/python3 -c "print(round(100.0 * ($t1 - $t0) / $(getconf CLK_TCK) / ($s1 - $s0), 3))")
        drained=$(grep -c '(drained)' "$work/server.log" || true)
        add reload "$(/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["hups"]=int(sys.argv[2]); r["drained"]=int(sys.argv[3]); r["master_cpu_pct"]=float(sys.argv[4]); print(json.dumps(r))' "$r" "$hups" "$drained" "$cpu")"
        ;;
    resize)
        start_server "$workers"
        loads resize
        sleep $(((dur - 4 * gap) / 2 > 0 ? (dur - 4 * gap) / 2 : 1))
        half=$((workers / 2 > 0 ? workers / 2 : 1))
        for _ in $(seq $((half + 1)) "$workers"); do kill -TTOU "$srv"; sleep "$gap"; done
        for _ in $(seq $((half + 1)) "$workers"); do kill -TTIN "$srv"; sleep "$gap"; done
        wait_loads
        stop_server
        add resize "$(summary resize)"
        ;;
    kill)
        start_server "$workers"
        loads kill
        sleep 2
        : >"$work/kills"
        for _ in $(seq 1 "$kill_secs"); do
            # the oldest worker: one past boot_ms, whose death is no failure at boot
            victim=$(ps -o pid= --sort=start_time --ppid "$srv" | head -1 | tr -d ' ')
            [ -n "$victim" ] || break
            echo "$victim $(date +%s.%N)" >>"$work/kills"
            kill -9 "$victim" || true
            sleep 1
        done
        wait_loads
        stop_server
        r=$(summary kill)
        add kill "$(/usr/bin/python3 - "$r" "$work/kills" "$work/server.log" <<'EOF'
import datetime, json, re, sys
r = json.loads(sys.argv[1])
kills = [l.split() for l in open(sys.argv[2]) if l.strip()]
log = open(sys.argv[3]).read().splitlines()
def when(line):
    t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()
# slot of each killed pid, then the first "ready" of that slot after the kill
slot_of = {}
for l in log:
    m = re.search(r"worker (\d+) started: pid (\d+)", l)
    if m:
        slot_of[m.group(2)] = m.group(1)
times = []
for pid, at in kills:
    at = float(at)
    slot = slot_of.get(pid)
    for l in log:
        m = re.search(r"worker (\d+) \(pid \d+\) ready after", l)
        if m and m.group(1) == slot and when(l) > at:
            times.append(1000 * (when(l) - at))
            break
times.sort()
r["kills"] = len(kills)
if times:
    r["respawn_ms"] = {"median": round(times[len(times) // 2], 1), "max": round(times[-1], 1)}
print(json.dumps(r))
EOF
)"
        ;;
    scale)
        sc="{}"
        for w in $(seq 1 "$scale_max"); do
            start_server "$w"
            "$gl" -k -c 100 -d "$scale_secs" --json --no-progress "$url" >"$work/scale.json" 2>/dev/null || true
            stop_server
            rps=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_sec"])' "$work/scale.json")
            sc=$(/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r[sys.argv[2]]=float(sys.argv[3]); print(json.dumps(r))' "$sc" "$w" "$rps")
        done
        add scale "$sc"
        ;;
    trap)
        add trap "$(/usr/bin/python3 "$here/reuseport_trap.py" 200 3)"
        ;;
    *) echo "reload.sh: unknown part $part" >&2; exit 2 ;;
    esac
done

if [ "$json" = 1 ]; then
    /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["bench"]="supervisor"; print(json.dumps(r))' "$results"
else
    /usr/bin/python3 - "$results" "$workers" "$conns" "$close_conns" "$dur" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
w, c, cc, d = sys.argv[2:6]
print("supervisor: seed-server --workers %s; grove-load -k -c %s and -c %s (no keep-alive), %s s each" % (w, c, cc, d))
base = r.get("baseline", {})
for part in ("baseline", "reload", "resize", "kill"):
    if part not in r:
        continue
    p = r[part]
    for kind, label in (("ka", "keep-alive"), ("close", "no keep-alive")):
        x = p.get(kind, {})
        if "error" in x or not x:
            print("  %-8s %-13s %s" % (part, label, x.get("error", "missing")))
            continue
        ratio = ""
        b = base.get(kind, {})
        if part != "baseline" and b.get("p99_ms"):
            ratio = "  p99/baseline %.2f" % (x["p99_ms"] / b["p99_ms"])
        print("  %-8s %-13s %9d requests  %6d failed  %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms%s" % (
            part, label, x["requests"], x["failed"], x["rps"], x["p50_ms"], x["p99_ms"], ratio))
    if part == "reload":
        print("  reload: %d SIGHUPs, %d old workers drained, master CPU %.3f%% of a core" % (
            p["hups"], p["drained"], p["master_cpu_pct"]))
    if part == "kill":
        rs = p.get("respawn_ms", {})
        print("  kill: %d SIGKILLs, respawn (kill to the new worker's ready) median %s ms, max %s ms" % (
            p["kills"], rs.get("median"), rs.get("max")))
if "trap" in r:
    t = r["trap"]
    print("  trap: %d queued connections, one of two listeners closed: SO_REUSEPORT reset %s, one shared socket reset %s" % (
        t["connections"], t["reuseport"]["reset"], t["shared"]["reset"]))
if "scale" in r:
    one = r["scale"].get("1")
    print("  scale (keep-alive, -c 100): " + ", ".join(
        "W=%s %.0f req/s (%.2fx)" % (k, v, v / one if one else 0) for k, v in sorted(r["scale"].items(), key=lambda kv: int(kv[0]))))
EOF
fi
exit 0
}
