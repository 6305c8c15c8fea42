#!/bin/sh
# Fuzz the HTTP server's request path (fuzz/http_request_fuzz.c: llhttp,
# src/http/parse.c and src/http/conn.c through an in-memory connection)
# with libFuzzer, AddressSanitizer and UBSan, for a bounded time.
#
# Usage: scripts/fuzz-http.sh [SECONDS [WORK_DIR]]
#   SECONDS   how long to fuzz (default 60)
#   WORK_DIR  where the binary, the growing corpus and any crash go
#             (default /tmp/grove-fuzz-http)
# The seed corpus fuzz/corpus/http/ is read, never written. Exits non-zero
# when the fuzzer finds a crash, a leak or undefined behaviour (the input
# is left in WORK_DIR as crash-*, to replay: WORK_DIR/http_request_fuzz FILE).
# Needs clang and libFuzzer (Debian: clang libclang-rt-14-dev; see
# scripts/deps.sh test) and llhttp's sources (node-llhttp).
set -eu
secs=${1:-60}
work=${2:-/tmp/grove-fuzz-http}
top=$(cd "$(dirname "$0")/.." && pwd)
llhttp_src=${LLHTTP_SRC_DIR:-/usr/share/llhttp}
llhttp_inc=${LLHTTP_INCLUDE_DIR:-/usr/share/include/llhttp}
cc=${CLANG:-clang}

if ! command -v "$cc" >/dev/null; then
    echo "fuzz-http: $cc not found: install clang and libclang-rt-14-dev (scripts/deps.sh test)" >&2
    exit 1
fi
if [ ! -f "$llhttp_src/llhttp.c" ]; then
    echo "fuzz-http: llhttp sources not in $llhttp_src (Debian package node-llhttp)" >&2
    exit 1
fi
mkdir -p "$work/corpus" "$work/obj"
bin=$work/http_request_fuzz
cd "$work/obj"

# The parser, the connection state machine and what they use, compiled
# straight from the sources: no hub, no sockets. llhttp (the slow one to
# compile) builds beside the rest; nothing is rebuilt while the binary is
# newer than every source.
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -I$top/include -I$top/src -I$llhttp_inc"
srcs="$top/fuzz/http_request_fuzz.c $top/src/http/parse.c $top/src/http/conn.c
      $top/src/http/misc.c $top/src/net/addr.c $top/src/arch/fail.c"
stale=1
if [ -x "$bin" ]; then
    # shellcheck disable=SC2086
    [ -z "$(find $srcs "$top/src/http/http.h" "$top/src/arch/fail.h" "$top/include/grove.h" \
        "$llhttp_src" "$0" \
        -newer "$bin" 2>/dev/null | head -1)" ] && stale=0
fi
if [ $stale -eq 1 ]; then
    rm -f ./*.o ./*.log
    pids=
    for f in llhttp api http; do
        # shellcheck disable=SC2086
        "$cc" $flags -w -c "$llhttp_src/$f.c" -o "llhttp_$f.o" 2>"llhttp_$f.log" &
        pids="$pids $!"
    done
    ok=1
    # shellcheck disable=SC2086
    "$cc" $flags -c $srcs 2>grove.log || ok=0
    for p in $pids; do
        wait "$p" || ok=0
    done
    # shellcheck disable=SC2086
    [ $ok -eq 1 ] && "$cc" $flags ./*.o -o "$bin" 2>>grove.log || ok=0
    if [ $ok -eq 0 ]; then
        cat ./*.log >&2
        echo "fuzz-http: build failed (is libclang-rt-14-dev, libFuzzer's runtime, installed?)" >&2
        exit 1
    fi
fi

cd "$work"
echo "fuzz-http: fuzzing for ${secs}s (corpus $work/corpus, seeds fuzz/corpus/http)"
# -rss_limit_mb and -timeout catch runaway memory and loops; -jobs stays 1.
rc=0
"$bin" "$work/corpus" "$top/fuzz/corpus/http" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 >"$work/fuzz.log" 2>&1 || rc=$?
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$work/fuzz.log" || true
if [ $rc -ne 0 ]; then
    tail -60 "$work/fuzz.log"
    echo "fuzz-http: FAILED (exit $rc); inputs: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null)"
    exit 1
fi
echo "fuzz-http: no crash"
