#!/bin/sh
# make bench: every benchmark, each comparing grove with a baseline measured
# in the same run. Text on the terminal; with BENCH_JSON=1 each prints one
# JSON object per line instead. (The seed-page experiment joins this later.)
set -eu
cd "$(dirname "$0")/.."
json=""
[ "${BENCH_JSON:-0}" = 1 ] && json=--json

echo "== core: switch, spawn+join, idle memory, timers (vs ucontext)"
build/bin/grove-micro $json
echo "== sync: channel and queue ping-pong"
build/bin/grove-sync-bench $json
echo "== echo over loopback: grove vs thread per connection"
build/bin/grove-echo-bench $json
echo "== HTTP: grove vs the thread-pool server vs nginx (wrk, ab)"
if [ -n "$json" ]; then BUILD=0 bench/http/http-bench.sh --json; else BUILD=0 bench/http/http-bench.sh; fi
