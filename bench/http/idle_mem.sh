#!/usr/bin/env bash
# bench/http/idle_mem.sh: what an idle keep-alive connection costs the
# server. For each server (seed-server --mode grove, and nginx with one
# worker as the peer, in the same run), open N connections, send one GET on
# each and read its response, hold them idle, and read the server's memory
# (VmRSS + VmPTE from /proc/PID/status: resident pages and the page tables
# that map them) before and while they are held. Reports bytes per
# connection, (held - before) / N, and the ratio grove/nginx.
#
#   bench/http/idle_mem.sh [--conns N] [--workers W] [--servers "grove nginx"]
#                          [--reps R] [--json]
#
# N is 10000 by default; clients are separate processes of at most 8000
# connections each (the descriptor limit is per process), each on its own
# source address in 127.0.0.0/8. --workers W runs W seed-server processes
# (SO_REUSEPORT; their memory is summed) and W nginx workers, for N beyond
# one process's descriptors. R repetitions (default 1, servers interleaved);
# the median is reported. Environment: SEED_SERVER (the binary,
# build/bin/seed-server), NGINX (nginx), SERVER_CPU/CLIENT_CPU (0 and 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"

conns=10000
workers=1
servers="grove nginx"
reps=1
json=0
while [ $# -gt 0 ]; do
    case "$1" in
        --conns) conns=$2; shift ;;
        --workers) workers=$2; shift ;;
        --servers) servers=$2; shift ;;
        --reps) reps=$2; shift ;;
        --json) json=1 ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        *) echo "idle_mem: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
log() { echo "idle_mem: $*" >&2; }
die() { log "$*"; exit 1; }

seed=${SEED_SERVER:-$root/build/bin/seed-server}
nginx_bin=${NGINX:-nginx}
command -v "$nginx_bin" >/dev/null || nginx_bin=/usr/sbin/nginx
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
host=127.0.0.1
port=${PORT:-23100}
nice_n=0
page=$root/tools/seed-server/seed-page.html
per_client=8000
for s in $servers; do
    case "$s" in
        grove) [ -x "$seed" ] || die "no $seed: run make" ;;
        nginx) command -v "$nginx_bin" >/dev/null || {
            log "nginx is missing (apt-get install nginx-light): measuring grove alone"
            servers=${servers/nginx/}
        } ;;
        *) die "unknown server $s" ;;
    esac
done

tmp=$(mktemp -d /tmp/grove-idle-mem.XXXXXX)
pids=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    local p
    for p in $pids; do stop_pid "$p"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$tmp"
mkdir -p "$tmp/html"
cp "$page" "$tmp/html/seed-page.html"
chmod 755 "$tmp/html"
chmod 644 "$tmp/html/seed-page.html"

# The processes whose memory counts: seed-server itself (or its workers),
# nginx's workers (not the master, which holds no connection).
srv_pid=""
mem_pids() {
    local kids
    kids=$(pgrep -P "$srv_pid" | tr '\n' ' ' || true)
    if [ "$1" = nginx ] || [ -n "$kids" ]; then echo "$kids"; else echo "$srv_pid"; fi
}
mem_bytes() {  # $1 server: VmRSS + VmPTE of its processes, in bytes
    local total=0 p
    for p in $(mem_pids "$1"); do
        total=$((total + $(awk '/^(VmRSS|VmPTE):/ {s += $2} END {print s + 0}' "/proc/$p/status")))
    done
    echo $((total * 1024))
}

start_server() {  # $1 server, $2 port
    local s=$1 p=$2 dir=$tmp/$1.$2
    mkdir -p "$dir"
    chmod 755 "$dir"
    case "$s" in
    grove)
        taskset -c "$server_cpu" "$seed" --mode grove --concurrency $((conns + 1024)) \
            --workers "$workers" --host "$host" --port "$p" >"$dir/log" 2>&1 &
        srv_pid=$!
        ;;
    nginx)
        render_nginx_conf "$here/nginx.conf.in" "$dir/nginx.conf" "$dir" "$tmp/html" \
            "$host" "$p" /seed-page.html "$conns"
        sed -i "s/^worker_processes 1;/worker_processes $workers;/" "$dir/nginx.conf"
        taskset -c "$server_cpu" "$nginx_bin" -e "$dir/error.log" -p "$dir" \
            -c "$dir/nginx.conf" >"$dir/log" 2>&1 &
        srv_pid=$!
        ;;
    esac
    pids="$pids $srv_pid"
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://$host:$p/seed-page.html" && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/log" >&2
    die "$s did not start"
}

one() {  # $1 server; prints bytes per connection, and the before/held totals
    local s=$1 p before held i n w left=$conns fifo cl="" fds=""
    p=$(next_port)
    start_server "$s" "$p"
    sleep 0.5
    before=$(mem_bytes "$s")
    i=0
    while [ "$left" -gt 0 ]; do
        n=$((left < per_client ? left : per_client))
        left=$((left - n))
        i=$((i + 1))
        fifo=$tmp/hold.$s.$p.$i
        mkfifo "$fifo"
        # stdin from the fifo: the client holds its connections until the
        # fifo's writer (opened below, kept in fds) closes.
        taskset -c "$client_cpu" "$py" "$here/idle_client.py" "$host" "$p" "$n" \
            /seed-page.html "127.0.0.$((i + 1))" <"$fifo" >"$tmp/client.$s.$i" 2>&1 &
        cl="$cl $!"
        pids="$pids $!"
        exec {w}>"$fifo"
        fds="$fds $w"
    done
    for i in $(seq "$i"); do
        for _ in $(seq 1200); do
            grep -q '^held' "$tmp/client.$s.$i" 2>/dev/null && break
            kill -0 "$(echo "$cl" | awk -v k="$i" '{print $k}')" 2>/dev/null ||
                { cat "$tmp/client.$s.$i" >&2; die "$s: client $i failed"; }
            sleep 0.1
        done
        grep -q '^held' "$tmp/client.$s.$i" || die "$s: client $i took too long"
    done
    sleep 3  # let the server settle: parked after 1 s idle, stacks trimmed after 1 s
    held=$(mem_bytes "$s")
    for w in $fds; do exec {w}>&-; done
    for c in $cl; do wait "$c" 2>/dev/null || true; done
    stop_pid "$srv_pid"
    echo "$(((held - before) / conns)) $before $held"
}

declare -A res
for r in $(seq "$reps"); do
    for s in $servers; do
        log "rep $r/$reps: $s, $conns idle connections, $workers worker(s)"
        one "$s" >"$tmp/one.out"
        out=$(cat "$tmp/one.out")
        log "  $s: $out (bytes/conn, before, held)"
        res[$s]="${res[$s]:-} ${out%% *}"
    done
done

median() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
g=""; ng=""
for s in $servers; do
    m=$(median "${res[$s]}")
    [ "$s" = grove ] && g=$m
    [ "$s" = nginx ] && ng=$m
done
ratio=""
[ -n "$g" ] && [ -n "$ng" ] && [ "$ng" -gt 0 ] && ratio=$(awk -v a="$g" -v b="$ng" 'BEGIN {printf "%.2f", a / b}')
if [ "$json" = 1 ]; then
    printf '{"bench":"http_idle_mem","conns":%d,"workers":%d,"reps":%d' "$conns" "$workers" "$reps"
    [ -n "$g" ] && printf ',"grove_bytes_per_conn":%d,"grove_samples":[%s]' "$g" \
        "$(echo "${res[grove]}" | xargs | tr ' ' ',')"
    [ -n "$ng" ] && printf ',"nginx_bytes_per_conn":%d,"nginx_samples":[%s]' "$ng" \
        "$(echo "${res[nginx]}" | xargs | tr ' ' ',')"
    [ -n "$ratio" ] && printf ',"grove_vs_nginx":%s' "$ratio"
    printf '}\n'
else
    printf 'idle keep-alive connections: %d, %d worker(s), median of %d\n' "$conns" "$workers" "$reps"
    [ -n "$g" ] && printf '  grove  %8d bytes/connection (RSS + page tables)\n' "$g"
    [ -n "$ng" ] && printf '  nginx  %8d bytes/connection\n' "$ng"
    [ -n "$ratio" ] && printf '  grove/nginx %s\n' "$ratio"
fi
exit 0
