#!/usr/bin/env bash
# bench/experiment/experiment.sh: the article's experiment, green threads
# against threads (docs/experiment.md), on this machine. For each server
# and each concurrency C: a freshly started server with a pool of C, then
# `ab -r -n N -c C` (no keep-alive, as the article) and grove-load with the
# same settings; then keep-alive runs (grove-load -k, wrk) at a few C.
# See docs/experiment.md.
#
#   bench/experiment/experiment.sh [--quick] [--servers "grove threaded gevent paste nginx"]
#
# Servers: seed-server --mode grove, seed-server --mode threaded (same
# parser, same handler, both with backlog 4096), gevent's pywsgi
# WSGIServer (spawn=C, gevent's default backlog 128) and Paste's thread-pool
# server (C workers, Paste's default backlog 5), both running the article's
# WSGI app under Debian's /usr/bin/python3, and nginx (1 worker, the same
# bytes from the page file). A server or client that is missing is reported
# as skipped, in the table and in the JSON.
#
# Output (BENCH_OUT, bench/out): the table on stdout, report.md,
# runs/<id>.json (one per run) and runs.jsonl, raw/<id>.txt (what each
# client printed), seed-experiment.png.
#
# Environment:
#   QUICK=1            concurrency 10 100 1000, 20,000 requests, keep-alive at 100 1000
#   CONCURRENCY        "10 100 1000 5000 10000"
#   KA_CONCURRENCY     "100 1000 10000"  (keep-alive runs; "" for none)
#   REQUESTS           100000 (20000 with QUICK)
#   REPEAT             3 (1 with QUICK): samples of each cell whose first run
#                      took under REPEAT_MAX_S (8 s), taken in rounds so that
#                      the servers' samples interleave in time; the table
#                      shows the median. The machine's speed drifts over
#                      minutes: one sample cannot settle a 10% comparison.
#   WRK_DURATION       10 s (3 with QUICK)
#   RUN_TIMEOUT        time limit of one client run, s (90; 20 with QUICK)
#   SERVERS            "grove threaded gevent paste nginx"
#   BENCH_HIDE         servers or clients to report as skipped without trying
#                      (e.g. "gevent wrk": for tests, or to save time)
#   PEER_PYTHON        /usr/bin/python3 (GEVENT_PYTHON, PASTE_PYTHON each)
#   SEED_SERVER        build/bin/seed-server;  GROVE_LOAD  build/bin/grove-load
#   NGINX              nginx;  BACKLOG  4096 (grove, threaded; nginx's config says 4096)
#   SERVER_CPU, CLIENT_CPU   0, 1 (taskset)
#   NICE               -20 as root, else 0: servers and clients ahead of the
#                      machine's other work (bench/lib.sh boost)
#   QUIET_MAX, QUIET_WAIT    10 (%), 120 (s): without NICE, wait for a quiet machine
#   BENCH_TUNE=1       raise the kernel settings that fall short (sysctl -w),
#                      restoring them at the end; otherwise only say what is short
#   PORT_BASE          18600
#   BENCH_OUT          bench/out
set -euo pipefail

# One block, read before it runs: editing the file during a run changes nothing.
{
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

log() { echo "experiment: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"

# ------------------------------------------------------------ options
quick=${QUICK:-0}
servers=${SERVERS:-grove threaded gevent paste nginx}
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --servers) servers=$2; shift ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    concs=${CONCURRENCY:-10 100 1000}; ka_concs=${KA_CONCURRENCY-100 1000}
    nreq=${REQUESTS:-20000}; wrk_dur=${WRK_DURATION:-3}; limit=${RUN_TIMEOUT:-20}
    repeat=${REPEAT:-1}
else
    concs=${CONCURRENCY:-10 100 1000 5000 10000}; ka_concs=${KA_CONCURRENCY-100 1000 10000}
    nreq=${REQUESTS:-100000}; wrk_dur=${WRK_DURATION:-10}; limit=${RUN_TIMEOUT:-90}
    repeat=${REPEAT:-3}
fi
repeat_max_s=${REPEAT_MAX_S:-8}
case "$repeat" in ''|*[!0-9]*|0) die "REPEAT must be a whole number >= 1, not '$repeat'" ;; esac
hide=" ${BENCH_HIDE:-} "
peer_py=${PEER_PYTHON:-/usr/bin/python3}
gevent_py=${GEVENT_PYTHON:-$peer_py}
paste_py=${PASTE_PYTHON:-$peer_py}
seed=${SEED_SERVER:-$root/build/bin/seed-server}
gload=${GROVE_LOAD:-$root/build/bin/grove-load}
nginx_bin=${NGINX:-nginx}
nginx_conf=$root/bench/http/nginx.conf.in
backlog=${BACKLOG:-4096}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
if [ "$(id -u)" = 0 ]; then nice_n=${NICE:--20}; else nice_n=${NICE:-0}; fi
quiet_max=${QUIET_MAX:-10}
quiet_budget=${QUIET_WAIT:-120}
port=${PORT_BASE:-18600}
out=${BENCH_OUT:-$root/bench/out}
host=127.0.0.1
url_path=/seed-page.html
page=$root/tools/seed-server/seed-page.html
# The report's Python: Debian's if there is one (any Python 3 will do).
report_py=/usr/bin/python3
[ -x "$report_py" ] || report_py=python3
tool="$report_py $here/experiment.py"

for s in $servers; do
    case "$s" in grove|threaded|gevent|paste|nginx) ;; *) die "unknown server $s" ;; esac
done
max_c=0
for c in $concs $ka_concs; do [ "$c" -gt "$max_c" ] && max_c=$c; done
[ -r "$page" ] || die "no $page"
page_len=$(stat -c %s "$page")
for t in curl:curl taskset:util-linux ss:iproute2 timeout:coreutils setsid:util-linux; do
    command -v "${t%%:*}" >/dev/null || die "missing ${t%%:*} (apt-get install ${t#*:})"
done

# ------------------------------------------------------------ clean-up
tmp=$(mktemp -d /tmp/grove-experiment.XXXXXX)
pids=""      # our servers and clients still running: killed on exit
restore=""   # "key=value" sysctls to put back on exit (BENCH_TUNE=1)
cleanup() {
    local p kv
    for p in $pids; do stop_pid "$p"; done
    for kv in $restore; do  # key=value, the value's blanks as ':'
        kv=${kv//:/ }
        if sysctl -q -w "${kv%%=*}=${kv#*=}" >/dev/null 2>&1; then
            log "restored ${kv%%=*} = ${kv#*=}"
        else
            log "could not restore $kv"
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$out/runs" "$out/raw" "$out/plot" "$out/report.md" "$out/runs.jsonl" \
    "$out/env.json" "$out/seed-experiment.png"
mkdir -p "$out/runs" "$out/raw"
t_start=$(date +%s)

# ------------------------------------------------------------ limits
# A process needs a descriptor per connection: raise the soft limit to the
# hard one (no sysctl needed for that).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# check_kernel: what the sweep needs from the kernel, what is set, and
# what to set; with BENCH_TUNE=1 it sets the sysctls that fall short.
sysval() { sysctl -n "$1" 2>/dev/null | tr '\t' ' ' || echo "absent"; }
check_kernel() {
    local k now need ok why fix
    printf '%-32s %-14s %-16s %s\n' "setting" "now" "needs" "why"
    while IFS='|' read -r k need why fix; do
        now=$(sysval "$k")
        case "$k" in
            net.ipv4.ip_local_port_range)
                set -- $now; ok=$(( $2 - $1 + 1 >= need )); need="width >= $need" ;;
            net.ipv4.tcp_tw_reuse) ok=$(( now >= 1 )); need=">= 1 (2: loopback only)" ;;
            *) if [ "$now" = absent ]; then ok=1; else ok=$(( now >= need )); fi; need=">= $need" ;;
        esac
        printf '%-32s %-14s %-16s %s%s\n' "$k" "$now" "$need" "$why" "$([ "$ok" = 1 ] || echo "  SHORT: sysctl -w $k='$fix'")"
        if [ "$ok" != 1 ] && [ "${BENCH_TUNE:-0}" = 1 ]; then
            if sysctl -q -w "$k=$fix" >/dev/null 2>&1; then
                restore="$restore $k=${now// /:}"
                printf '%-32s %-14s (BENCH_TUNE=1: set for this run, restored at the end)\n' "  -> $k" "$fix"
            else
                printf '  cannot set %s (not root?)\n' "$k"
            fi
        fi
    done <<EOF
net.ipv4.ip_local_port_range|$((2 * max_c))|client ports: C open at once plus those in TIME_WAIT|30000 64999
net.ipv4.tcp_tw_reuse|1|a new connection may reuse a port in TIME_WAIT|1
net.core.somaxconn|$backlog|caps every listen backlog (grove, threaded, nginx ask $backlog)|$backlog
net.ipv4.tcp_max_syn_backlog|$backlog|half-open connections per listener before SYN cookies|$backlog
vm.max_map_count|$((2 * max_c + 1000))|thread-pool servers: a stack and a guard page per thread|$((2 * max_c + 65530))
kernel.threads-max|$((max_c + 2000))|thread-pool servers: one thread per pool slot|$((max_c + 100000))
kernel.pid_max|$((max_c + 2000))|every thread takes a pid|$((max_c + 32768))
fs.file-max|$((4 * max_c))|server and client each hold C sockets|$((4 * max_c + 100000))
EOF
    printf '%-32s %-14s %-16s %s%s\n' "RLIMIT_NOFILE (ulimit -n)" "$(ulimit -n)/$(ulimit -Hn)" ">= $((max_c + 100))" \
        "per process: C sockets + a few" "$([ "$(ulimit -n)" -ge $((max_c + 100)) ] || echo "  SHORT: raise nofile in /etc/security/limits.conf")"
    printf '%-32s %-14s %-16s %s\n' "net.ipv4.tcp_syncookies" "$(sysval net.ipv4.tcp_syncookies)" "(reported)" \
        "1: a full SYN queue is answered with cookies (the article's 'SYN flooding' messages)"
    if [ -r /proc/sys/net/netfilter/nf_conntrack_max ]; then
        printf '%-32s %-14s %-16s %s\n' "net.netfilter.nf_conntrack_max" \
            "$(sysval net.netfilter.nf_conntrack_max)" "(reported)" \
            "conntrack in use: $(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo '?') entries now; a full table drops packets"
    fi
}

log "checking the kernel and process limits"
{
    # (--doctor's exit status may say that something is short: its text is what counts.)
    if [ -x "$gload" ] && { "$gload" --doctor >"$tmp/doctor.txt" 2>&1 || true; } && [ -s "$tmp/doctor.txt" ]; then
        echo "grove-load --doctor:"
        cat "$tmp/doctor.txt"
        echo
        echo "this sweep (max concurrency $max_c):"
    else
        echo "(grove-load --doctor: not available, $gload missing; the experiment's own check follows)"
    fi
    check_kernel
} >"$tmp/kernel.txt"
cat "$tmp/kernel.txt" >&2

# ------------------------------------------------------------ peers
# avail[S] = "" when the server can run, else why it is skipped.
declare -A avail version
for s in grove threaded gevent paste nginx; do avail[$s]=""; version[$s]=""; done
for s in $servers; do
    if [[ "$hide" == *" $s "* ]]; then avail[$s]="hidden by BENCH_HIDE"; continue; fi
    case "$s" in
    grove|threaded)
        [ -x "$seed" ] || { avail[$s]="no $seed (make)"; continue; } ;;
    gevent)
        version[$s]=$("$gevent_py" -c 'import gevent; print(gevent.__version__)' 2>/dev/null) ||
            avail[$s]="$gevent_py cannot import gevent (apt-get install python3-gevent)" ;;
    paste)
        version[$s]=$("$paste_py" -c 'import importlib.metadata as m, paste.httpserver; print(m.version("paste"))' 2>/dev/null) ||
            avail[$s]="$paste_py cannot import paste.httpserver (apt-get install python3-paste)" ;;
    nginx)
        command -v "$nginx_bin" >/dev/null || { avail[$s]="no nginx (apt-get install nginx-light)"; continue; }
        version[$s]=$("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||') ;;
    esac
done
declare -A cavail
cavail[ab]=""; cavail[grove-load]=""; cavail[wrk]=""
command -v ab >/dev/null || cavail[ab]="ab is not installed (apt-get install apache2-utils)"
command -v wrk >/dev/null || cavail[wrk]="wrk is not installed (apt-get install wrk)"
[ -x "$gload" ] || cavail[grove-load]="grove-load is not built yet ($gload missing)"
for c in ab grove-load wrk; do
    if [[ "$hide" == *" $c "* ]]; then cavail[$c]="hidden by BENCH_HIDE"; fi
done
for s in $servers; do [ -z "${avail[$s]}" ] || log "server $s: skipped: ${avail[$s]}"; done
for c in ab grove-load wrk; do [ -z "${cavail[$c]}" ] || log "client $c: skipped: ${cavail[$c]}"; done

# Every run uses a copy of the binaries, even if build/ is rebuilt meanwhile.
# (The JSON and the report name the originals: shown() maps the copies back.)
seed_orig=$seed gload_orig=$gload
shown() {
    local x=${1//$tmp\/seed-server/$seed_orig}
    x=${x//$tmp\/grove-load/$gload_orig}
    echo "${x//$root\//}"
}
seed_sha=""
if [ -x "$seed" ]; then
    seed_sha=$(sha256sum "$seed" | cut -c1-12)
    cp "$seed" "$tmp/seed-server"; seed=$tmp/seed-server
fi
gload_sha=""
if [ -x "$gload" ]; then
    gload_sha=$(sha256sum "$gload" | cut -c1-12)
    cp "$gload" "$tmp/grove-load"; gload=$tmp/grove-load
fi

# nginx's document root: a copy of the page, readable by its worker user.
chmod 755 "$tmp"
mkdir -p "$tmp/html"
cp "$page" "$tmp/html/seed-page.html"
chmod 755 "$tmp/html"; chmod 644 "$tmp/html/seed-page.html"

prio=""
[ "$nice_n" = 0 ] || prio="setsid nice -n $nice_n"

# ------------------------------------------------------------ servers
srv_pid=""   # the process started
rss_pid=""   # the process whose VmHWM is reported (nginx: its worker)
srv_cmd=""   # the command, for the JSON

server_command() {  # $1 server, $2 C, $3 port, $4 run dir: the command line
    local s=$1 c=$2 p=$3
    case "$s" in
        grove|threaded) echo "$seed --mode $s --concurrency $c --host $host --port $p --backlog $backlog" ;;
        gevent) echo "$gevent_py $here/gevent_server.py --concurrency $c --host $host --port $p --page $page" ;;
        paste) echo "$paste_py $here/paste_server.py --concurrency $c --host $host --port $p --page $page" ;;
        nginx) echo "$nginx_bin -e $4/prefix/error.log -p $4/prefix -c $4/prefix/nginx.conf" ;;
    esac
}

# start_server S C PORT DIR: 0 when it answers; else 1 with the reason in $tmp/why
start_server() {
    local s=$1 c=$2 p=$3 dir=$4 cmd
    mkdir -p "$dir"
    if [ "$s" = nginx ]; then
        mkdir -p "$dir/prefix"; chmod 755 "$dir" "$dir/prefix"
        render_nginx_conf "$nginx_conf" "$dir/prefix/nginx.conf" "$dir/prefix" "$tmp/html" \
            "$host" "$p" "$url_path" "$c"
    fi
    cmd=$(server_command "$s" "$c" "$p" "$dir")
    srv_cmd="taskset -c $server_cpu $(shown "$cmd")"
    # shellcheck disable=SC2086
    $prio taskset -c "$server_cpu" $cmd >"$dir/server.log" 2>&1 &
    srv_pid=$!
    pids="$pids $srv_pid"
    boost "$srv_pid"
    rss_pid=$srv_pid
    # Ready: the server says so (nginx: its worker exists), then answers.
    # Paste starts C threads first: up to 60 s.
    local ready=0
    for _ in $(seq 600); do
        kill -0 "$srv_pid" 2>/dev/null || break
        if [ "$s" = nginx ]; then
            rss_pid=$(pgrep -P "$srv_pid" | head -1 || true)
            [ -n "$rss_pid" ] && { ready=1; break; }
        elif grep -q ': ready:' "$dir/server.log"; then
            ready=1; break
        fi
        sleep 0.1
    done
    if [ "$ready" = 1 ]; then
        ready=0
        for _ in $(seq 100); do
            curl -s -o /dev/null --max-time 2 "http://$host:$p$url_path" && { ready=1; break; }
            kill -0 "$srv_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    if [ "$ready" != 1 ]; then
        echo "$s did not start or does not answer on $host:$p: $(tail -3 "$dir/server.log" "$dir/prefix/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)" >"$tmp/why"
        return 1
    fi
    # The same work: the exact page bytes, 200, text/html, with HTTP/1.1
    # and with HTTP/1.0 (as ab asks).
    local v o
    for v in --http1.1 --http1.0; do
        o=$(curl -sS $v --max-time 5 -o "$dir/body" -w '%{http_code} %{content_type}' "http://$host:$p$url_path" 2>&1) ||
            { echo "$s: curl $v failed: $o" >"$tmp/why"; return 1; }
        case "$o" in "200 text/html"*) ;; *) echo "$s: curl $v got '$o', not 200 text/html" >"$tmp/why"; return 1 ;; esac
        cmp -s "$dir/body" "$page" || { echo "$s: curl $v: the body is not the seed page" >"$tmp/why"; return 1; }
    done
    return 0
}

stop_server() {
    [ -n "$srv_pid" ] || return 0
    stop_pid "$srv_pid"
    pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$srv_pid" | tr '\n' ' ' || true)
    srv_pid=""; rss_pid=""
}

# ------------------------------------------------------------ clients
client_command() {  # $1 client, $2 C, $3 url
    local cl=$1 c=$2 u=$3
    case "$cl" in
        ab) echo "ab -r -n $nreq -c $c $u" ;;
        grove-load) echo "$gload -r -n $nreq -c $c -t $limit --json $u" ;;
        grove-load-k) echo "$gload -k -r -n $nreq -c $c -t $limit --json $u" ;;
        wrk) echo "wrk -t1 -c$c -d${wrk_dur}s --timeout 10s --latency $u" ;;
    esac
}
client_tool() { case "$1" in grove-load*) echo grove-load ;; *) echo "$1" ;; esac; }

n_run=0
declare -A repeatable=()  # "S CLIENT C" -> 1: its first run was short enough to repeat
# measure S CLIENT C: one run, recorded as runs/<id>.json, whatever happens.
measure() {
    local s=$1 cl=$2 c=$3 id p d u cmd tl rc=0 alive=1 rss=0
    n_run=$((n_run + 1))
    id=$(printf '%03d-%s-%s-c%d' "$n_run" "$s" "$cl" "$c")
    local common=(--out "$out" --id "$id" --server "$s" --client "$cl" --concurrency "$c"
        --requests "$([ "$cl" = wrk ] && echo 0 || echo "$nreq")" --date "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
    if [ -n "${avail[$s]}" ]; then
        $tool record "${common[@]}" --skip "server skipped: ${avail[$s]}" >&2; return 0
    fi
    if [ -n "${cavail[$(client_tool "$cl")]}" ]; then
        $tool record "${common[@]}" --skip "client skipped: ${cavail[$(client_tool "$cl")]}" >&2; return 0
    fi
    wait_quiet
    p=$(next_port)
    d=$tmp/run-$id
    u="http://$host:$p$url_path"
    cmd=$(client_command "$cl" "$c" "$u")
    if ! start_server "$s" "$c" "$p" "$d"; then
        [ -n "$rss_pid" ] && rss=$(vmhwm "$rss_pid")
        stop_server
        cp "$d/server.log" "$out/raw/$id.server.txt" 2>/dev/null || true
        $tool record "${common[@]}" --command "$(shown "$cmd")" --server-command "$srv_cmd" \
            --server-error "$(cat "$tmp/why")" --rss "${rss:-0}" --raw-rel "raw/$id.server.txt" >&2
        return 0
    fi
    # The client's time limit: wrk's duration plus a margin; the others RUN_TIMEOUT.
    # grove-load stops itself at -t RUN_TIMEOUT: the outer limit is a backstop.
    tl=$limit
    [ "$cl" = wrk ] && tl=$((wrk_dur + 30))
    case "$cl" in grove-load*) tl=$((limit + 15)) ;; esac
    children_s; local c0=$child_s t0 m0 s0
    t0=$(now_s); m0=$(machine_ticks); s0=$(proc_ticks "$rss_pid")
    # SIGINT first: ab then prints what it has measured so far.
    # shellcheck disable=SC2086
    $prio taskset -c "$client_cpu" timeout -s INT -k 10 "$tl" $cmd >"$out/raw/$id.txt" 2>&1 &
    local cli=$!
    pids="$pids $cli"
    boost "$cli"
    wait "$cli" || rc=$?
    pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$cli" | tr '\n' ' ' || true)
    local t1 m1 s1
    t1=$(now_s); m1=$(machine_ticks); s1=$(proc_ticks "$rss_pid"); children_s; local c1=$child_s
    kill -0 "$rss_pid" 2>/dev/null || alive=0
    rss=$(vmhwm "$rss_pid")
    stop_server
    cp "$d/server.log" "$out/raw/$id.server.txt" 2>/dev/null || true
    local spct cpct opct el
    read -r el spct cpct opct < <(awk -v t0="$t0" -v t1="$t1" -v m0="$m0" -v m1="$m1" \
        -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v hz="$clk_tck" 'BEGIN {
            w = t1 - t0; srv = (s1 - s0) / hz; all = (m1 - m0) / hz; cli = c1 - c0
            o = all - srv - cli; if (o < 0) o = 0
            printf "%.3f %.0f %.0f %.0f\n", w, 100 * srv / w, 100 * cli / w, 100 * o / w }')
    if [ "$rc" = 0 ] && [ "$alive" = 1 ] && awk -v e="$el" -v m="$repeat_max_s" 'BEGIN { exit !(e < m) }'; then
        repeatable["$s $cl $c"]=1
    fi
    $tool record "${common[@]}" --command "taskset -c $client_cpu $(shown "$cmd")" --server-command "$srv_cmd" \
        --time-limit "$tl" --grove-load-limit "$limit" --raw "$out/raw/$id.txt" --raw-rel "raw/$id.txt" --page-len "$page_len" \
        --exit-code "$rc" --elapsed "$el" --server-alive "$alive" --rss "${rss:-0}" \
        --server-cpu "$spct" --client-cpu "$cpct" --other-cpu "$opct" >&2
}

# ------------------------------------------------------------ environment
gitrev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo "?")
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
os_name=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -o)
ver() { "$@" 2>&1 | head -1 || true; }
title="$( [ "$quick" = 1 ] && echo "QUICK sweep" || echo "Full sweep"): concurrency $concs, $nreq requests per run, keep-alive at ${ka_concs:-none} (wrk ${wrk_dur} s); server on CPU $server_cpu, client on CPU $client_cpu; time limit $limit s per run"
sweep_runs=0
for c in $concs; do for s in $servers; do sweep_runs=$((sweep_runs + 2)); done; done
for c in $ka_concs; do for s in $servers; do sweep_runs=$((sweep_runs + 2)); done; done
$report_py - "$out/env.json" <<PYEOF
import json, sys
env = {
    "title": """$title""",
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "quick": $([ "$quick" = 1 ] && echo True || echo False),
    "cpu": """$cpu""", "cores": "$(nproc) online",
    "memory": "$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)",
    "os": """$os_name""", "kernel": "$(uname -r)",
    "nice": "$nice_n$([ "$nice_n" != 0 ] && echo ' (servers and clients in their own sessions, autogroup nice; see bench/lib.sh)')",
    "sweep": "$sweep_runs cells, each one run, or $repeat (the median shown) when its first run took under $repeat_max_s s; concurrency $concs; keep-alive ${ka_concs:-none}; $nreq requests; time limit $limit s",
    "versions": {
        "grove (git)": "$gitrev", "seed-server sha256": "${seed_sha:-absent}",
        "grove-load sha256": "${gload_sha:-absent}",
        "gevent": "${version[gevent]:-${avail[gevent]:-not in this sweep}}",
        "paste": "${version[paste]:-${avail[paste]:-not in this sweep}}",
        "peer python": """$("$peer_py" --version 2>&1 || echo "$peer_py: absent") ($peer_py)""",
        "nginx": "${version[nginx]:-${avail[nginx]:-not in this sweep}}",
        "ab": """$(ver ab -V | sed 's/^This is //; s/ <.*//'), apache2-utils $(dpkg-query -W -f='${Version}' apache2-utils 2>/dev/null || echo '?')""",
        "python3-gevent, python3-paste (Debian)": """$(dpkg-query -W -f='${Version} ' python3-gevent python3-paste 2>/dev/null || echo '?')""",
        "wrk": """$(ver wrk -v | awk '{print $1, $2}')""",
        "curl": """$(ver curl --version | awk '{print $2}')""",
        "gnuplot": """$(ver gnuplot --version)""",
    },
    "servers": {
        "grove": "seed-server --mode grove: grove's HTTP server, a pool of C green threads, listen backlog $backlog",
        "threaded": "seed-server --mode threaded: the classic thread-pool server, C OS threads, same parser and handler, the same listen backlog $backlog as grove (so that comparison is about the concurrency model alone)",
        "gevent": "gevent's pywsgi WSGIServer, spawn=C, gevent's default listen backlog (128 in gevent 22.10), access log off (log=None), the article's app",
        "paste": "Paste's httpserver.serve, threadpool_workers=C, Paste's default request_queue_size=5 (the listen backlog), HTTP/1.0 (no keep-alive), the article's app",
        "nginx": "nginx, 1 worker, worker_connections C+1024, backlog 4096, sendfile+tcp_nopush, open_file_cache, access log off (bench/http/nginx.conf.in), serving the page file",
    },
    "kernel_check": open("$tmp/kernel.txt").read(),
    "server_commands": [
        "taskset -c $server_cpu $(shown "$(server_command grove C P)") ",
        "taskset -c $server_cpu $(shown "$(server_command threaded C P)")",
        "taskset -c $server_cpu $(shown "$(server_command gevent C P)")",
        "taskset -c $server_cpu $(shown "$(server_command paste C P)")",
        "taskset -c $server_cpu $(shown "$(server_command nginx C P T)")   # T/prefix/nginx.conf from bench/http/nginx.conf.in",
    ],
    "client_commands": [
        "taskset -c $client_cpu $(shown "$(client_command ab C "http://$host:P$url_path")")",
        "taskset -c $client_cpu $(shown "$(client_command grove-load C "http://$host:P$url_path")")",
        "taskset -c $client_cpu $(shown "$(client_command grove-load-k C "http://$host:P$url_path")")",
        "taskset -c $client_cpu $(shown "$(client_command wrk C "http://$host:P$url_path")")",
        "# each wrapped in: timeout -s INT -k 10 LIMIT (ab prints its partial results on SIGINT)",
    ],
}
json.dump(env, open(sys.argv[1], "w"), indent=1)
PYEOF

# ------------------------------------------------------------ the sweep
log "$title"
log "servers: $servers; $sweep_runs cells, the short ones sampled $repeat times; worst case of the first round about $(( sweep_runs * (limit + 15) / 60 )) min if every run hit its limit"
# sweep C CLIENT...: round 1 measures every cell once; later rounds repeat
# the short ones, so each server's samples sit between the others'.
sweep() {
    local c=$1 round s cl
    shift
    for round in $(seq 1 "$repeat"); do
        for s in $servers; do
            for cl in "$@"; do
                [ "$round" = 1 ] || [ -n "${repeatable["$s $cl $c"]:-}" ] || continue
                measure "$s" "$cl" "$c"
            done
        done
    done
}
for c in $concs; do sweep "$c" ab grove-load; done
for c in $ka_concs; do sweep "$c" grove-load-k wrk; done
wall=$(( $(date +%s) - t_start ))
$report_py - "$out/env.json" "$wall" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1])); e["wall_s"] = int(sys.argv[2])
json.dump(e, open(sys.argv[1], "w"), indent=1)
PYEOF
$tool report --out "$out" --gnuplot-script "$here/seed-experiment.gp"
exit
}
