#!/usr/bin/env bash
# bench/http/compare.sh: two seed-server binaries (a change's before and
# after) measured by bench/http/http-bench.sh in the same run, rounds
# interleaved (before, after, after, before, ...), so that both see the
# same machine; medians, spreads and after/before ratios. See
# docs/bench-http.md ("Before and after a change").
#
#   bench/http/compare.sh [--rounds N] [--servers "grove threaded"]
#                         [--points "wrk_c100 ab_c100"] [--json] BEFORE AFTER
#
# BEFORE and AFTER are seed-server binaries (build one from another tree,
# e.g. `git worktree add` or `git archive main`). Each round runs
# http-bench.sh once per binary with --reps 1 (server on CPU 0, client on
# CPU 1, its quiet-machine checks); ROUNDS is 5. Environment as for
# http-bench.sh (WRK_DURATION, AB_N, ...). The figures: req/s and the
# server's CPU time per request (us/req: its cost whoever is the
# bottleneck), median and min-max over the rounds; a ratio within the
# spreads is noise.
set -euo pipefail
{
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"

rounds=5
servers="grove threaded"
points="wrk_c100 ab_c100"
json=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift ;;
        --servers) servers=$2; shift ;;
        --points) points=$2; shift ;;
        --json) json=1 ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        -*) echo "compare: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 2 ] || { echo "compare: want BEFORE and AFTER binaries (see --help)" >&2; exit 2; }
before=$(realpath "$1")
after=$(realpath "$2")
for b in "$before" "$after"; do
    [ -x "$b" ] || { echo "compare: $b is not an executable" >&2; exit 2; }
done
py=/usr/bin/python3
[ -x "$py" ] || py=python3

tmp=$(mktemp -d /tmp/grove-http-compare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

one() {  # $1 label, $2 binary, $3 round
    echo "compare: round $3/$rounds: $1 ($2)" >&2
    SEED_SERVER=$2 BUILD=0 "$here/http-bench.sh" --json --reps 1 --servers "$servers" \
        --points "$points" >"$tmp/$1.$3.json"
}
for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then
        one before "$before" "$r"; one after "$after" "$r"
    else
        one after "$after" "$r"; one before "$before" "$r"
    fi
done

"$py" - "$tmp" "$rounds" "$servers" "$points" "$json" "$before" "$after" <<'EOF'
import json, statistics, sys
tmp, rounds, servers, points, as_json = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5] == "1"
runs = {lab: [json.load(open(f"{tmp}/{lab}.{r}.json")) for r in range(1, rounds + 1)] for lab in ("before", "after")}
out = {"bench": "http-compare", "rounds": rounds, "before": sys.argv[6], "after": sys.argv[7]}
rows = []
for p in points:
    for s in servers:
        k = f"{s}_{p}"
        row = [p, s]
        for m in ("rps", "server_us_per_req"):
            for lab in ("before", "after"):
                v = [float(x[f"{k}_{m}"]) for x in runs[lab]]
                out[f"{k}_{m}_{lab}"] = statistics.median(v)
                out[f"{k}_{m}_{lab}_min"], out[f"{k}_{m}_{lab}_max"] = min(v), max(v)
            out[f"{k}_{m}_ratio"] = out[f"{k}_{m}_after"] / out[f"{k}_{m}_before"]
        out[f"{k}_errors"] = sum(int(x[f"{k}_errors"]) for lab in runs for x in runs[lab])
        rows.append(k)
if as_json:
    print(json.dumps(out))
    sys.exit(0)
print(f"before: {sys.argv[6]}\nafter:  {sys.argv[7]}")
print(f"{rounds} interleaved rounds; medians (min-max)\n")
print(f"{'point':9} {'server':8} {'before req/s':>24} {'after req/s':>24} {'ratio':>6}  {'us/req before':>14} {'after':>6} {'ratio':>6} {'errors':>6}")
for k in rows:
    p, s = k.split("_", 1)[1], k.split("_", 1)[0]
    def cell(m, lab):
        return f"{out[f'{k}_{m}_{lab}']:.0f} ({out[f'{k}_{m}_{lab}_min']:.0f}-{out[f'{k}_{m}_{lab}_max']:.0f})"
    print(f"{p:9} {s:8} {cell('rps','before'):>24} {cell('rps','after'):>24} {out[f'{k}_rps_ratio']:6.3f}"
          f"  {out[f'{k}_server_us_per_req_before']:14.1f} {out[f'{k}_server_us_per_req_after']:6.1f}"
          f" {out[f'{k}_server_us_per_req_ratio']:6.3f} {out[f'{k}_errors']:6d}")
EOF
exit
}
