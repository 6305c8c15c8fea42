#!/bin/sh
# Fuzz the HTTP layer with libFuzzer, AddressSanitizer and UBSan, each
# target for a bounded time:
#   http_request_fuzz   the server's request path (head parser, chunked
#                       decoder, connection state machine) through an
#                       in-memory connection; llhttp checks its answers
#   http_diff_fuzz      the same server against a simple reference parser
#                       (fuzz/ref_http.h): they must agree on where each
#                       message ends, or the server must refuse it
#   http_chunked_fuzz   the chunked decoder: in one piece and in slices,
#                       and against the reference
#   http_response_fuzz  the client's response reader: well-formed results,
#                       the same in one piece and in slices
#
# Usage: scripts/fuzz-http.sh [SECONDS [WORK_DIR [TARGETS]]]
#   SECONDS   how long to fuzz each target (default 60)
#   WORK_DIR  where the binaries, the growing corpora and any crash go
#             (default /tmp/grove-fuzz-http)
#   TARGETS   which ("http_diff_fuzz http_chunked_fuzz", say; default all)
# The seed corpora fuzz/corpus/{http,chunked,response}/ are read, never
# written; fuzz/http.dict gives the mutations HTTP's words. Exits non-zero when a fuzzer finds a crash, a leak, undefined
# behaviour or a disagreement (the input is left in WORK_DIR as
# crash-*, to replay: WORK_DIR/TARGET FILE). Prints each target's
# executions and new units. Needs clang and libFuzzer (Debian: clang
# libclang-rt-14-dev; see scripts/deps.sh test) and llhttp's sources
# (node-llhttp).
set -eu
secs=${1:-60}
work=${2:-/tmp/grove-fuzz-http}
targets=${3:-http_request_fuzz http_diff_fuzz http_chunked_fuzz http_response_fuzz}
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
mkdir -p "$work/obj"
cd "$work/obj"

# The HTTP layer and what it uses, compiled straight from the sources: no
# hub, no sockets. llhttp (the slow one to compile) builds beside the rest;
# nothing is rebuilt while every binary is newer than every source.
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -I$top/include -I$top/src -I$top/fuzz -I$llhttp_inc"
srcs="$top/src/http/parse.c $top/src/http/conn.c $top/src/http/head.c $top/src/http/chunked.c
      $top/src/http/response.c $top/src/http/misc.c $top/src/net/addr.c $top/src/arch/fail.c
      $top/fuzz/report_stub.c"
stale=0
for t in $targets; do
    [ -f "$top/fuzz/$t.c" ] || { echo "fuzz-http: no target $t" >&2; exit 2; }
    # shellcheck disable=SC2086
    if [ ! -x "$work/$t" ] || [ -n "$(find $srcs "$top"/fuzz/*.c "$top"/fuzz/*.h "$top/src/http/http.h" "$top/src/arch/fail.h" \
            "$top/include/grove.h" "$top/include/grove/http.h" "$llhttp_src" "$0" \
            -newer "$work/$t" 2>/dev/null | head -1)" ]; then
        stale=1
    fi
done
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
    for t in $targets; do
        # shellcheck disable=SC2086
        "$cc" $flags -c "$top/fuzz/$t.c" -o "target_$t.o" 2>>grove.log || ok=0
    done
    for p in $pids; do
        wait "$p" || ok=0
    done
    for t in $targets; do
        # shellcheck disable=SC2086
        [ $ok -eq 1 ] && "$cc" $flags $(ls ./*.o | grep -v '/target_') "target_$t.o" \
            -o "$work/$t" 2>>grove.log || ok=0
    done
    if [ $ok -eq 0 ]; then
        cat ./*.log >&2
        echo "fuzz-http: build failed (is libclang-rt-14-dev, libFuzzer's runtime, installed?)" >&2
        exit 1
    fi
fi

cd "$work"
# Seeds: requests for the server's two targets, bodies and responses for
# the others.
seeds() {
    case $1 in
        http_chunked_fuzz) echo "$top/fuzz/corpus/chunked" ;;
        http_response_fuzz) echo "$top/fuzz/corpus/response" ;;
        *) echo "$top/fuzz/corpus/http" ;;
    esac
}
rc=0
for t in $targets; do
    mkdir -p "$work/corpus-$t"
    echo "fuzz-http: $t for ${secs}s (corpus $work/corpus-$t, seeds $(seeds "$t"))"
    # -rss_limit_mb and -timeout catch runaway memory and loops; -jobs stays 1.
    r=0
    "$work/$t" "$work/corpus-$t" "$(seeds "$t")" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 -artifact_prefix="$work/$t-" \
        -dict="$top/fuzz/http.dict" \
        >"$work/$t.log" 2>&1 || r=$?
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$work/$t.log" |
        sed "s/^/  $t /" || true
    if [ $r -ne 0 ]; then
        tail -40 "$work/$t.log"
        echo "fuzz-http: $t FAILED (exit $r); inputs: $(ls "$work/$t"-* 2>/dev/null)"
        rc=1
    fi
done
[ $rc -eq 0 ] && echo "fuzz-http: no crash, no disagreement"
exit $rc
