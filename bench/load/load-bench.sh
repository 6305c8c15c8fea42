#!/usr/bin/env bash
# bench/load/load-bench.sh: grove-load against wrk and ab on the same nginx
# (1 worker on SERVER_CPU, each client alone on CPU CLIENT_CPU), in the same
# run: requests/s and the client's CPU time per request, keep-alive
# (wrk -t1 -c100 -d10s; grove-load -w 1 -k -c 100 -d 10) and without it
# (ab -n 100000 -c 100; wrk -H "Connection: close"; grove-load -n 100000 -c 100),
# in ROUNDS interleaved rounds (every client once per round, the order of the
# clients alternating from round to round, so a drift of the machine's speed
# falls on all of them): per client the median and the min-max spread of
# req/s and CPU us per request, and grove-load's medians as ratios to its
# peers' medians. Then 50,000 keep-alive connections held at once
# (grove-load -w 4 -b SOURCES against seed-server --workers 4). See
# docs/bench-load.md.
#
#   bench/load/load-bench.sh [--json] [--quick] [--rounds R]
#
# Environment: ROUNDS (5; --rounds wins; REPEAT is an old name for it),
# QUICK=1 (3 rounds, 3 s, 20,000 requests, 12 s hold),
# PARTS ("compare hold"), KA_DURATION (10), CLOSE_N (100000), CLOSE_DURATION
# (10), CONNS (100), GL_CLOSE (rst), HOLD_CONNS (50000), HOLD_WORKERS (4),
# HOLD_DURATION (20), SOURCES (127.0.0.1-127.0.0.8), SERVER_CPU (0),
# CLIENT_CPU (1), NICE (-20 as root: run ahead of other work), BUILD=0 (no
# make), BENCH_TUNE=1 (raise somaxconn and tcp_max_syn_backlog, restored at
# exit), GROVE_LOAD, SEED_SERVER, NGINX, PORT_BASE (18600), QUIET_MAX,
# QUIET_WAIT. Text to stdout, or with --json one JSON object on one line.
set -euo pipefail
{  # one block, read before it runs: editing the file cannot change a run in progress
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"  # stop_pid, next_port, boost, wait_quiet, children_s, render_nginx_conf, print_usage

json=0
quick=${QUICK:-0}
rounds_opt=${ROUNDS:-${REPEAT:-}}
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1 ;;
        --quick) quick=1 ;;
        --rounds) [ $# -ge 2 ] || { echo "load-bench: --rounds needs a count" >&2; exit 2; }
                  rounds_opt=$2; shift ;;
        --rounds=*) rounds_opt=${1#--rounds=} ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        *) echo "load-bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    reps=${rounds_opt:-3}; ka_dur=${KA_DURATION:-3}; close_n=${CLOSE_N:-20000}
    close_dur=${CLOSE_DURATION:-3}; hold_dur=${HOLD_DURATION:-12}
else
    reps=${rounds_opt:-5}; ka_dur=${KA_DURATION:-10}; close_n=${CLOSE_N:-100000}
    close_dur=${CLOSE_DURATION:-10}; hold_dur=${HOLD_DURATION:-20}
fi
case "$reps" in ''|*[!0-9]*|0) echo "load-bench: rounds must be a positive count, not '$reps'" >&2; exit 2 ;; esac
conns=${CONNS:-100}
parts=${PARTS:-compare hold}
hold_c=${HOLD_CONNS:-50000}
hold_w=${HOLD_WORKERS:-4}
sources=${SOURCES:-127.0.0.1-127.0.0.8}
gl_close=${GL_CLOSE:-rst}
port=${PORT_BASE:-18600}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
nice_n=${NICE:-0}
quiet_max=${QUIET_MAX:-10}
quiet_budget=${QUIET_WAIT:-300}
nginx_bin=${NGINX:-nginx}
host=127.0.0.1
url_path=/seed-page.html
page=$root/tools/seed-server/seed-page.html

log() { echo "load-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

missing=""
for tool in wrk:wrk ab:apache2-utils curl:curl taskset:util-linux ss:iproute2 "$nginx_bin":nginx-light; do
    command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
done
[ -z "$missing" ] || die "missing Debian packages:$missing"

tmp=$(mktemp -d /tmp/grove-load-bench.XXXXXX)
pids=""     # our servers and clients still running: killed on exit, whatever happens
restore=""  # "key=value" sysctls to put back (BENCH_TUNE=1)
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    local p kv
    for p in $pids; do stop_pid "$p"; done
    for kv in $restore; do sysctl -qw "${kv%%=*}=${kv#*=}" || log "could not restore $kv"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
forget() { pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ' || true); }

if [ "${BUILD:-1}" != 0 ]; then
    log "building (make)"
    make >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; die "make failed"; }
fi
# Copies: a rebuild of build/ during the run cannot change what is measured.
for b in grove-load seed-server; do
    src=$root/build/bin/$b
    [ "$b" = grove-load ] && src=${GROVE_LOAD:-$src}
    [ "$b" = seed-server ] && src=${SEED_SERVER:-$src}
    [ -x "$src" ] || die "no $src: run make"
    cp "$src" "$tmp/$b"
done
gl=$tmp/grove-load seed=$tmp/seed-server
gl_sha=$(sha256sum "$tmp/grove-load" | cut -c1-12)

# ------------------------------------------------------------ kernel limits
# The hold run needs, per source address, HOLD_CONNS/8 local ports, a
# listen queue for a burst of 50,000 connects, and 12,500 descriptors per
# process (client and server each spread over 4 processes).
sysctl_keys="net.ipv4.ip_local_port_range net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_tw_reuse net.ipv4.tcp_syncookies"
if [ "${BENCH_TUNE:-0}" = 1 ]; then
    for kv in net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192; do
        old=$(sysctl -n "${kv%%=*}")
        if [ "$old" -lt "${kv#*=}" ]; then
            sysctl -qw "$kv" && restore="$restore ${kv%%=*}=$old" && log "set $kv (was $old)"
        fi
    done
fi
sysctls=""
for k in $sysctl_keys; do sysctls="$sysctls$k=$(sysctl -n "$k" | tr '\t' ' ');"; done
sysctls="${sysctls}ulimit_n=$(ulimit -n)"
log "kernel: $sysctls"

# ------------------------------------------------------------ servers
prio=""
[ "$nice_n" = 0 ] || prio="setsid nice -n $nice_n"
chmod 755 "$tmp"; mkdir -p "$tmp/html"; cp "$page" "$tmp/html/"; chmod -R a+rX "$tmp/html"
page_len=$(stat -c %s "$page")
srv_pid="" wk_pid=""  # nginx's master and worker

start_nginx() {  # $1 port, $2 directory
    local p=$1 d=$2/prefix
    mkdir -p "$d"; chmod 755 "$2" "$d"
    render_nginx_conf "$here/../http/nginx.conf.in" "$d/nginx.conf" "$d" "$tmp/html" \
        "$host" "$p" "$url_path" "$conns"
    $prio taskset -c "$server_cpu" "$nginx_bin" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" \
        >"$2/server.log" 2>&1 &
    srv_pid=$!; pids="$pids $srv_pid"; boost "$srv_pid"
    wk_pid=""
    for _ in $(seq 100); do
        wk_pid=$(pgrep -P "$srv_pid" | head -1 || true)
        [ -n "$wk_pid" ] && curl -s -o "$2/body" --max-time 1 "http://$host:$p$url_path" && break
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    cmp -s "$2/body" "$page" || { cat "$2/server.log" "$d/error.log" >&2 2>/dev/null; die "nginx does not serve the page"; }
}
stop_server() { stop_pid "$srv_pid"; forget "$srv_pid"; srv_pid=""; }

# ------------------------------------------------------------ clients
# run_client LIMIT OUT CMD...: the client pinned, bounded, in the
# background (a signal ends the benchmark at once); its CPU (and that of
# the processes it forks and reaps) lands in this shell's `times`.
run_client() {
    local limit=$1 f=$2 rc=0 p
    shift 2
    children_s; c0=$child_s; t0=$(now_s); s0=$(proc_ticks "$wk_pid")
    $prio taskset -c "$client_cpu" timeout -k 5 "$limit" "$@" >"$f" 2>"$f.err" &
    p=$!; pids="$pids $p"; boost "$p"
    wait "$p" || rc=$?
    forget "$p"
    t1=$(now_s); s1=$(proc_ticks "$wk_pid"); children_s
    read -r cli_s wall srv_pct < <(awk -v a="$c0" -v b="$child_s" -v t0="$t0" -v t1="$t1" \
        -v s0="$s0" -v s1="$s1" -v hz="$clk_tck" \
        'BEGIN { printf "%.4f %.4f %.0f\n", b - a, t1 - t0, 100 * (s1 - s0) / hz / (t1 - t0) }')
    [ "$rc" = 0 ] || { cat "$f" "$f.err" >&2; die "$1 exited with $rc"; }
}
jnum() { sed -n "s/.*\"$1\": \\([0-9.]*\\).*/\\1/p" "$2" | head -1; }  # a number from grove-load's JSON

# Each prints "ok rps failed" into $f.res: full answers, their rate, and
# everything else (errors, other statuses, other lengths).
parse_wrk() {
    awk '/ requests in / { n = $1 } /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        END { if (n == "") exit 1; print n - bad, rps * (n - bad) / n, bad + 0 }' "$1" >"$1.res"
}
parse_ab() {  # ab's own "Failed requests" may count one twice: the page count decides
    awk -v len="$page_len" -v n="$close_n" '/^Time taken for tests:/ { t = $5 }
        /^HTML transferred:/ { ok = int($3 / len) } /^Complete requests:/ { done = $3 }
        END { if (t == "") exit 1; print ok, ok / t, n - ok }' "$1" >"$1.res"
}
parse_gl() {
    local ok
    ok=$(( $(jnum completed "$1") - $(jnum non_2xx "$1") ))
    echo "$ok $(awk -v ok="$ok" -v d="$(jnum duration_s "$1")" 'BEGIN { print ok / d }') $(jnum total "$1")" >"$1.res"
}

# ------------------------------------------------------------ the comparisons
: >"$tmp/results"  # "test client rep rps us_per_req cpu_pct failed srv_pct"
measure() {  # $1 test, $2 client, $3 rep
    local p d u f
    wait_quiet
    p=$(next_port); d=$tmp/$1-$2-$3; mkdir -p "$d"; f=$d/out
    start_nginx "$p" "$d"
    u="http://$host:$p$url_path"
    case "$1-$2" in
    keepalive-wrk) run_client $((ka_dur + 30)) "$f" wrk -t1 -c"$conns" -d"${ka_dur}s" --timeout 10s "$u"; parse_wrk "$f" ;;
    keepalive-grove-load) run_client $((ka_dur + 30)) "$f" "$gl" -w 1 -k -r -c "$conns" -d "$ka_dur" \
        --json --no-progress "$u"; parse_gl "$f" ;;
    close-ab) run_client 300 "$f" ab -q -r -n "$close_n" -c "$conns" "$u"; parse_ab "$f" ;;
    close-wrk) run_client $((close_dur + 30)) "$f" wrk -t1 -c"$conns" -d"${close_dur}s" --timeout 10s \
        -H "Connection: close" "$u"; parse_wrk "$f" ;;
    close-grove-load) run_client 300 "$f" "$gl" -w 1 -r -n "$close_n" -c "$conns" -t 240 \
        --close "$gl_close" --json --no-progress "$u"; parse_gl "$f" ;;
    esac
    kill -0 "$wk_pid" 2>/dev/null || die "nginx died during $1 $2"
    stop_server
    read -r ok rps bad <"$f.res" || die "cannot read $2's output ($f)"
    awk -v t="$1" -v c="$2" -v r="$3" -v ok="$ok" -v rps="$rps" -v bad="$bad" -v s="$cli_s" \
        -v w="$wall" -v sp="$srv_pct" 'BEGIN { printf "%s %s %s %.0f %.2f %.0f %d %s\n", t, c, r, rps,
        (ok > 0 ? 1e6 * s / ok : 0), 100 * s / w, bad, sp }' | tee -a "$tmp/results" |
        awk '{ printf "load-bench: rep %s %s %s: %s req/s, %s us CPU/req, client CPU %s%%, server %s%%, failed %s\n",
            $3, $1, $2, $4, $5, $6, $8, $7 }' >&2
}

log "$reps interleaved round(s): keep-alive -c $conns for ${ka_dur}s; no keep-alive -c $conns, $close_n requests" \
    "(wrk ${close_dur}s); nginx on CPU $server_cpu, clients on CPU $client_cpu"
for rep in $(seq "$reps"); do
    case " $parts " in *" compare "*) ;; *) break ;; esac
    # Odd rounds run the peers first, even rounds grove-load first: neither
    # side always gets the slot after a quiet pause or a busy one.
    if [ $((rep % 2)) = 1 ]; then ka="wrk grove-load" cl="ab wrk grove-load"
    else ka="grove-load wrk" cl="grove-load wrk ab"; fi
    for c in $ka; do measure keepalive "$c" "$rep"; done
    for c in $cl; do measure close "$c" "$rep"; done
done

# ------------------------------------------------------------ 50,000 held
# Not pinned: the server's 4 workers and the client's 4 share both cores.
# The count of ESTABLISHED client sockets, sampled every second, shows the
# connections were open at the same time, not one after another.
peak=0 rc=0 h_full=-1
case " $parts " in *" hold "*) ;; *) hold_c=0 ;; esac
[ "$hold_c" = 0 ] || {
wait_quiet
p=$(next_port); d=$tmp/hold; mkdir -p "$d"
$prio "$seed" --mode grove --workers "$hold_w" --concurrency 20000 --host "$host" --port "$p" \
    >"$d/server.log" 2>&1 &
srv_pid=$!; pids="$pids $srv_pid"; boost "$srv_pid"
for _ in $(seq 100); do grep -q 'ready:' "$d/server.log" && break; sleep 0.1; done
grep -q 'ready:' "$d/server.log" || { cat "$d/server.log" >&2; die "seed-server did not start"; }
log "hold: $hold_c keep-alive connections from $sources for ${hold_dur}s (grove-load -w $hold_w)"
$prio timeout -k 5 $((hold_dur + 60)) "$gl" -w "$hold_w" -k -r -b "$sources" -c "$hold_c" -d "$hold_dur" \
    --json --no-progress "http://$host:$p/" >"$d/out" 2>"$d/out.err" &
hp=$!; pids="$pids $hp"; boost "$hp"
# The sampler gets the same priority as the client and server: starved, one
# ss dump of 100,000 sockets would take seconds and count a moving target.
# shellcheck disable=SC2016  # expanded by the sampler's bash
$prio bash -c 't0=$(date +%s.%N); while :; do
    echo "$(date +%s.%N) $(ss -Htn state established "( dport = :$1 )" | wc -l)" | awk -v t0="$t0" "{ print \$1 - t0, \$2 }"
    sleep 1; done' sampler "$p" >"$d/samples" &
sp=$!; pids="$pids $sp"; boost "$sp"
wait "$hp" || rc=$?; forget "$hp"
stop_pid "$sp"; forget "$sp"
read -r peak h_full < <(awk -v c="$hold_c" '$2 > peak { peak = $2 } $2 >= c && full == "" { full = sprintf("%.0f", $1) }
    END { print peak + 0, full == "" ? -1 : full }' "$d/samples")
kill -0 "$srv_pid" 2>/dev/null || log "seed-server died during the hold run"
stop_server
[ "$rc" = 0 ] || { cat "$d/out.err" >&2; log "grove-load exited with $rc in the hold run"; }
h_open=$(jnum connections_opened "$d/out"); h_fail=$(jnum total "$d/out")
h_rps=$(jnum requests_per_sec "$d/out"); h_p99=$(jnum p99 "$d/out")
log "hold: opened ${h_open:-?}, failed ${h_fail:-?}, peak ESTABLISHED $peak (all after $h_full s), ${h_rps:-?} req/s"
}

# ------------------------------------------------------------ report
awk -v json="$json" -v reps="$reps" -v quick="$quick" -v nice_n="$nice_n" -v conns="$conns" \
    -v ka_dur="$ka_dur" -v close_n="$close_n" -v close_dur="$close_dur" -v gl_close="$gl_close" \
    -v gl_sha="$gl_sha" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v sysctls="$sysctls" \
    -v kernel="$(uname -r)" -v ncpu="$(nproc)" -v cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
    -v hold_c="$hold_c" -v hold_w="$hold_w" -v hold_dur="$hold_dur" -v sources="$sources" -v h_rc="$rc" \
    -v h_open="${h_open:-0}" -v h_fail="${h_fail:--1}" -v h_rps="${h_rps:-0}" -v h_p99="${h_p99:-0}" -v peak="$peak" -v h_full="$h_full" '
function median(list,    a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function extreme(list, want_max,    a, n, i, m) {
    n = split(list, a, " "); m = a[1] + 0
    for (i = 2; i <= n; i++) if (want_max ? a[i] + 0 > m : a[i] + 0 < m) m = a[i] + 0
    return m
}
function add(k, v) { keys[++nk] = k; val[k] = v }
function js(s) { gsub(/"/, "\\\"", s); return "\"" s "\"" }
function arr(l) { l = substr(l, 2); gsub(/ /, ", ", l); return "[" l "]" }
function target(name, ok) { T[++nt] = name; OK[nt] = ok }
{ k = $1 "_" $2; gsub("-", "_", k); R[k] = R[k] " " $4; U[k] = U[k] " " $5; C[k] = C[k] " " $6
  F[k] += $7; S[k] = S[k] " " $8; order[k] = $1 " " $2; if (!(k in seen)) { seen[k] = 1; ks[++nks] = k } }
END {
    add("bench", js("load")); add("date", js(when)); add("cpu", js(cpu)); add("cpus", ncpu)
    add("kernel", js(kernel)); add("grove_load_sha", js(gl_sha)); add("quick", quick ? "true" : "false")
    add("rounds", reps); add("nice", nice_n + 0); add("connections", conns); add("keepalive_s", ka_dur)
    add("close_requests", close_n); add("close_wrk_s", close_dur); add("grove_load_close", js(gl_close))
    add("sysctls", js(sysctls))
    for (i = 1; i <= nks; i++) {
        k = ks[i]; MR[k] = median(R[k]); MU[k] = median(U[k])
        add(k "_rps", sprintf("%.0f", MR[k])); add(k "_cpu_us_per_req", sprintf("%.2f", MU[k]))
        add(k "_client_cpu_pct", median(C[k])); add(k "_server_cpu_pct", median(S[k])); add(k "_failed", F[k])
        add(k "_rps_min", extreme(R[k], 0)); add(k "_rps_max", extreme(R[k], 1))
        add(k "_cpu_us_min", sprintf("%.2f", extreme(U[k], 0))); add(k "_cpu_us_max", sprintf("%.2f", extreme(U[k], 1)))
        add(k "_rps_all", arr(R[k])); add(k "_cpu_us_all", arr(U[k]))
    }
    split("keepalive_wrk close_ab close_wrk", peers, " ")
    for (i = 1; i <= 3; i++) {
        q = peers[i]; g = q; sub(/_[a-z]+$/, "_grove_load", g)
        if (!(q in MR) || !(g in MR)) continue
        RR[q] = MR[g] / MR[q]; RU[q] = MU[q] > 0 ? MU[g] / MU[q] : 0
        add("rps_ratio_vs_" q, sprintf("%.3f", RR[q])); add("cpu_ratio_vs_" q, sprintf("%.3f", RU[q]))
    }
    if (nks) {
        target("keep-alive req/s >= wrk", RR["keepalive_wrk"] >= 1)
        target("keep-alive CPU/req <= wrk", RU["keepalive_wrk"] <= 1)
        target("no keep-alive req/s >= ab", RR["close_ab"] >= 1)
        target("no keep-alive CPU/req <= ab", RU["close_ab"] <= 1)
        nf = 0; for (k in F) nf += F[k]
        target("no failed request in the comparisons", nf == 0)
    }
    if (hold_c) {
        target(sprintf("%d connections held at once, 0 failed", hold_c),
            h_rc == 0 && h_fail == 0 && h_open >= hold_c && peak >= hold_c)
        add("hold_connections", hold_c); add("hold_workers", hold_w); add("hold_s", hold_dur)
        add("hold_sources", js(sources)); add("hold_connections_opened", h_open + 0); add("hold_failed", h_fail + 0)
        add("hold_peak_established", peak); add("hold_all_open_after_s", h_full)
        add("hold_rps", sprintf("%.0f", h_rps)); add("hold_p99_ms", h_p99 + 0)
    }
    all = 1; tj = ""
    for (t = 1; t <= nt; t++) { all = all && OK[t]; tj = tj sprintf("%s%s: %s", (t > 1 ? ", " : ""), js(T[t]), OK[t] ? "true" : "false") }
    add("targets", "{" tj "}"); add("targets_met", all ? "true" : "false")
    if (json) {
        printf "{"; for (i = 1; i <= nk; i++) printf "%s\"%s\": %s", (i > 1 ? ", " : ""), keys[i], val[keys[i]]; print "}"
        exit
    }
    printf "grove-load against wrk and ab: nginx (1 worker) on one core, each client alone on the other\n"
    printf "%s, %d CPUs; kernel %s; grove-load %s; median and min-max of %d interleaved round(s)\n", cpu, ncpu, kernel, gl_sha, reps
    if (nks) printf "keep-alive: -c %d for %d s; no keep-alive: -c %d, %d requests (wrk: %d s); grove-load --close %s\n\n", \
        conns, ka_dur, conns, close_n, close_dur, gl_close
    if (nks) printf "%-10s %-11s %9s %15s %10s %13s %11s %7s %7s\n", "test", "client", "req/s", "(min-max)", \
        "CPU us/req", "(min-max)", "client CPU%", "nginx%", "failed"
    for (i = 1; i <= nks; i++) {
        k = ks[i]; split(order[k], tc, " ")
        printf "%-10s %-11s %9.0f %15s %10.2f %13s %11s %7s %7d\n", tc[1], tc[2], MR[k],
            sprintf("%.0f-%.0f", extreme(R[k], 0), extreme(R[k], 1)), MU[k],
            sprintf("%.2f-%.2f", extreme(U[k], 0), extreme(U[k], 1)), median(C[k]), median(S[k]), F[k]
    }
    if (nks) printf "\ngrove-load / peer (medians):   req/s   CPU per request\n"
    for (i = 1; i <= 3; i++) if (peers[i] in RR)
        printf "  %-27s %6.3fx   %6.3fx\n", peers[i], RR[peers[i]], RU[peers[i]]
    if (hold_c) {
        printf "\nhold: grove-load -w %d -k -b %s -c %d -d %d against seed-server --workers 4\n", hold_w, sources, hold_c, hold_dur
        printf "  opened %d, failed %d, peak ESTABLISHED %d (all open after %s s), %.0f req/s, p99 %.0f ms\n", \
            h_open, h_fail, peak, h_full, h_rps, h_p99
    }
    printf "kernel: %s\n\ntargets:\n", sysctls
    for (t = 1; t <= nt; t++) printf "  [%s] %s\n", OK[t] ? "ok" : "MISS", T[t]
}' "$tmp/results"
exit
}
