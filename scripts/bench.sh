#!/bin/sh
# make bench: grove's main job, the article's experiment (green threads
# against threads, with gevent, Paste and nginx as peers: a table on the
# terminal, bench/out/report.md, JSON of every run and
# bench/out/seed-experiment.png; see docs/experiment.md). The other
# benchmarks, each comparing grove with a baseline measured in the same
# run, are behind BENCH:
#
#   BENCH=experiment  the experiment only (the default)
#   BENCH=others      the other benchmarks only
#   BENCH=all         the experiment, then the others, then TLS (bench/tls:
#                     grove's HTTPS against nginx's, docs/tls.md)
#
# QUICK=1 gives a reduced sweep (and quick HTTP runs); with BENCH_JSON=1
# the other benchmarks print one JSON object per line instead of text (the
# experiment always writes its JSON to bench/out).
set -eu
cd "$(dirname "$0")/.."
json=""
[ "${BENCH_JSON:-0}" = 1 ] && json=--json
what=${BENCH:-experiment}
case "$what" in
    experiment|others|all) ;;
    *) echo "bench: BENCH is experiment, others or all (not '$what')" >&2; exit 2 ;;
esac

if [ "$what" != others ]; then
    echo "== the experiment: green threads vs threads (grove, threaded, gevent, Paste, nginx; ab, grove-load, wrk)"
    bench/experiment/experiment.sh
fi
[ "$what" != experiment ] || exit 0

echo "== core: switch, spawn+join, idle memory, timers (vs ucontext)"
build/bin/grove-micro $json
echo "== sync: channel and queue ping-pong"
build/bin/grove-sync-bench $json
echo "== between hubs: gr_xchan round trips (vs eventfd between plain threads) and throughput"
build/bin/grove-xchan-bench $json
echo "== fork: grove's child handler against a bare fork of the same process"
build/bin/grove-fork-bench $json --threads 1000 --fds 100
build/bin/grove-fork-bench $json --threads 1000 --fds 2000
echo "== libgrove-patch: patched calls vs gr_ calls and libc, a POSIX echo server under the patch"
build/bin/grove-patch-bench $json
echo "== processes: spawn+wait and a pipe against the bare calls, from a 16 MiB and a 1 GiB parent"
build/bin/grove-proc-bench $json
build/bin/grove-proc-bench $json --rss 1024
echo "== signals: kill to handler, grove against a sigwaitinfo thread"
build/bin/grove-signal-bench $json
echo "== echo over loopback: grove vs thread per connection"
build/bin/grove-echo-bench $json
echo "== HTTP parsing: the request path in memory; grove's head parser vs grove-load's"
build/bin/grove-request-path $json
build/bin/grove-head-parse $json
echo "== HTTP: grove vs the thread-pool server vs nginx (wrk, ab)"
if [ -n "$json" ]; then BUILD=0 bench/http/http-bench.sh --json; else BUILD=0 bench/http/http-bench.sh; fi
echo "== HTTP: bytes per idle keep-alive connection, grove vs nginx (10,000 held)"
bench/http/idle_mem.sh $json
echo "== grove-load against wrk and ab (nginx as the target), 50,000 connections held"
if [ -n "$json" ]; then BUILD=0 bench/load/load-bench.sh --json; else BUILD=0 bench/load/load-bench.sh; fi
if [ "$what" = all ]; then
    echo "== TLS: grove's HTTPS vs nginx (full and resumed handshakes/s, keep-alive req/s, idle memory; openssl speed ceilings)"
    if [ -n "$json" ]; then BUILD=0 bench/tls/tls-bench.sh --json; else BUILD=0 bench/tls/tls-bench.sh; fi
fi
echo "== supervisor: reloads, resizes and kill -9 under grove-load, scaling with W, the SO_REUSEPORT trap"
if [ -n "$json" ]; then BUILD=0 bench/supervisor/reload.sh --json; else BUILD=0 bench/supervisor/reload.sh; fi
