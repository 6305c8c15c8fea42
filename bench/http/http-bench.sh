#!/usr/bin/env bash
# bench/http/http-bench.sh: grove's HTTP server against the classic
# thread-pool server (same parser, same handler: build/bin/seed-server
# --mode grove|threaded) and nginx, all serving the same bytes (the seed
# page, tools/seed-server/seed-page.html, as text/html), measured in the
# same run. See docs/bench-http.md.
#
#   bench/http/http-bench.sh [--json] [--quick] [--reps N]
#                            [--servers "grove threaded nginx"] [--points "wrk_c100 wrk_c1000 ab_c100"]
#
# Points, for every server:
#   wrk_c100   wrk -t1 -c100  -d10s  keep-alive
#   wrk_c1000  wrk -t1 -c1000 -d10s  keep-alive
#   ab_c100    ab -n 50000 -c 100    no keep-alive (a new connection per request)
# Each point is run REPS times (3) and the median is reported; each run
# gets a freshly started server (on its own port), whose peak RSS (VmHWM;
# nginx: the worker process) is read when the load ends. seed-server gets
# --concurrency equal to the client's connection count.
#
# The server runs on CPU 0 and the client on CPU 1 (taskset). Before every
# run the server's answer is compared byte for byte with the seed page
# (curl + cmp, with HTTP/1.1 and HTTP/1.0 requests).
#
# Environment: QUICK=1 (3 s wrk runs, 10,000 ab requests, one repetition),
# REPS, WRK_DURATION (s), AB_N, AB_C, PORT_BASE (18400), SERVER_CPU (0),
# CLIENT_CPU (1), BUILD=0 (do not run make first), SEED_SERVER (the
# seed-server binary, build/bin/seed-server), NGINX (the nginx binary),
# NGINX_CONF (its configuration template, bench/http/nginx.conf.in),
# QUIET_MAX (10), QUIET_WAIT (300), RETRIES (2), RETRY_OTHER (15): how it
# copes with a shared machine (see "CPU use" below); NICE=-20 (root):
# run servers and clients ahead of other work (see boost below).
# Text goes to stdout; with --json, one JSON object instead; progress to
# stderr.
set -euo pipefail

# The whole script is one block, read before it runs: editing the file
# while a benchmark runs cannot change what that run does.
{
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
# shellcheck source=../lib.sh
. "$root/bench/lib.sh"  # stop_pid, next_port, boost, vmhwm, CPU use, wait_quiet, print_usage

# ------------------------------------------------------------ options
json=0
quick=${QUICK:-0}
servers="grove threaded nginx"
points="wrk_c100 wrk_c1000 ab_c100"
reps=${REPS:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1 ;;
        --quick) quick=1 ;;
        --reps) reps=$2; shift ;;
        --servers) servers=$2; shift ;;
        --points) points=$2; shift ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        *) echo "http-bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    wrk_dur=${WRK_DURATION:-3}; ab_n=${AB_N:-10000}; reps=${reps:-1}
else
    wrk_dur=${WRK_DURATION:-10}; ab_n=${AB_N:-50000}; reps=${reps:-3}
fi
ab_c=${AB_C:-100}
port=${PORT_BASE:-18400}
server_cpu=${SERVER_CPU:-0}
nice_n=${NICE:-0}
client_cpu=${CLIENT_CPU:-1}
nginx_bin=${NGINX:-nginx}
nginx_conf=${NGINX_CONF:-$here/nginx.conf.in}
host=127.0.0.1
url_path=/seed-page.html
page=$root/tools/seed-server/seed-page.html
seed=${SEED_SERVER:-$root/build/bin/seed-server}

log() { echo "http-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

for s in $servers; do
    case "$s" in grove|threaded|nginx) ;; *) die "unknown server $s" ;; esac
done
for pt in $points; do
    case "$pt" in wrk_c100|wrk_c1000|ab_c100) ;; *) die "unknown point $pt" ;; esac
done
missing=""
for tool in wrk:wrk ab:apache2-utils curl:curl taskset:util-linux ss:iproute2; do
    t=${tool%%:*} pkg=${tool#*:}
    command -v "$t" >/dev/null || missing="$missing $pkg"
done
case " $servers " in *" nginx "*) command -v "$nginx_bin" >/dev/null || missing="$missing nginx" ;; esac
[ -z "$missing" ] ||
    die "missing Debian packages:$missing (apt-get install$missing; nginx is run by this script on its own, never as the system service)"
[ -r "$page" ] || die "no $page"

# ------------------------------------------------------------ clean-up
tmp=$(mktemp -d /tmp/grove-http-bench.XXXXXX)
pids=""  # our servers and clients still running: killed on exit, whatever happens

# shellcheck disable=SC2317  # called by the trap
cleanup() {
    local p
    for p in $pids; do stop_pid "$p"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ build
if [ "${BUILD:-1}" != 0 ]; then
    log "building (make)"
    make >"$tmp/make.log" 2>&1 ||
        { cat "$tmp/make.log" >&2; die "make failed (BUILD=0 measures the seed-server already built)"; }
fi
case " $servers " in *" grove "*|*" threaded "*)
    [ -x "$seed" ] || die "no $seed: run make"
    # Every run uses this copy, even if build/ is rebuilt meanwhile.
    cp "$seed" "$tmp/seed-server"
    seed_sha=$(sha256sum "$seed" | cut -c1-12)
    log "seed-server: $seed (sha256 $seed_sha...)"
    seed=$tmp/seed-server
    ;;
esac

# nginx's document root: a copy of the page, readable by its worker user.
chmod 755 "$tmp"
mkdir -p "$tmp/html"
cp "$page" "$tmp/html/seed-page.html"
chmod 755 "$tmp/html"
chmod 644 "$tmp/html/seed-page.html"
page_len=$(stat -c %s "$page")

# ------------------------------------------------------------ servers
# NICE=-20 (as root): servers and clients in sessions of their own, their
# autogroups boosted (boost, in bench/lib.sh).
prio=""
if [ "$nice_n" != 0 ]; then
    prio="setsid nice -n $nice_n"
fi

srv_pid=""  # the process started (seed-server, or nginx's master)
rss_pid=""  # the process whose VmHWM is reported (nginx: the worker)

wait_ready() {  # $1 url; the server answers within 10 s or dies
    for _ in $(seq 100); do
        kill -0 "$srv_pid" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

start_server() {  # $1 server, $2 connections, $3 port, $4 run directory
    local s=$1 conns=$2 p=$3 dir=$4
    mkdir -p "$dir"
    case "$s" in
    grove|threaded)
        $prio taskset -c "$server_cpu" "$seed" --mode "$s" --concurrency "$conns" \
            --host "$host" --port "$p" >"$dir/server.log" 2>&1 &
        srv_pid=$!
        pids="$pids $srv_pid"
        boost "$srv_pid"
        for _ in $(seq 100); do
            grep -q 'seed-server: ready:' "$dir/server.log" && break
            kill -0 "$srv_pid" 2>/dev/null || break
            sleep 0.1
        done
        grep -q 'seed-server: ready:' "$dir/server.log" ||
            { cat "$dir/server.log" >&2; die "seed-server --mode $s did not start"; }
        rss_pid=$srv_pid
        ;;
    nginx)
        mkdir -p "$dir/prefix"
        chmod 755 "$dir" "$dir/prefix"
        render_nginx_conf "$nginx_conf" "$dir/prefix/nginx.conf" "$dir/prefix" "$tmp/html" \
            "$host" "$p" "$url_path" "$conns"
        $prio taskset -c "$server_cpu" "$nginx_bin" -e "$dir/prefix/error.log" -p "$dir/prefix" \
            -c "$dir/prefix/nginx.conf" >"$dir/server.log" 2>&1 &
        srv_pid=$!
        pids="$pids $srv_pid"
        boost "$srv_pid"
        rss_pid=""
        for _ in $(seq 100); do
            rss_pid=$(pgrep -P "$srv_pid" | head -1 || true)
            [ -n "$rss_pid" ] && break
            kill -0 "$srv_pid" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$rss_pid" ] ||
            { cat "$dir/server.log" "$dir/prefix/error.log" >&2 2>/dev/null; die "nginx did not start"; }
        ;;
    esac
    wait_ready "http://$host:$p$url_path" ||
        { cat "$dir/server.log" >&2; die "$s does not answer on $host:$p"; }
}

stop_server() {
    stop_pid "$srv_pid"
    pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$srv_pid" | tr '\n' ' ' || true)
    srv_pid=""
    rss_pid=""
}

# The same work: the exact page bytes, 200, text/html, with HTTP/1.1
# (keep-alive, as wrk asks) and HTTP/1.0 (as ab asks).
verify() {  # $1 server, $2 url, $3 directory
    local s=$1 u=$2 d=$3 v out code ctype
    for v in --http1.1 --http1.0; do
        out=$(curl -sS $v --max-time 5 -o "$d/body" -w '%{http_code} %{content_type}' "$u") ||
            die "$s: curl $v $u failed"
        code=${out%% *}
        ctype=${out#* }
        [ "$code" = 200 ] || die "$s: curl $v answered $code"
        case "$ctype" in text/html*) ;; *) die "$s: Content-Type is '$ctype', not text/html" ;; esac
        cmp -s "$d/body" "$page" || die "$s: curl $v body differs from $page"
    done
}

# ------------------------------------------------------------ clients
# Each writes "rps errors [p50_ms p99_ms]" to <output>.res: errors counts
# failed requests, non-2xx answers and socket errors, which must all be 0.
cli_pid=""
run_client() {  # $1 time limit (s), $2 output file, the rest: the command
    local limit=$1 f=$2 rc=0
    shift 2
    # In the background, so that a signal ends the benchmark at once and
    # the clean-up can kill the client too.
    $prio taskset -c "$client_cpu" timeout -k 5 "$limit" "$@" >"$f" 2>&1 &
    cli_pid=$!
    pids="$pids $cli_pid"
    boost "$cli_pid"
    wait "$cli_pid" || rc=$?
    pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$cli_pid" | tr '\n' ' ' || true)
    cli_pid=""
    return "$rc"
}

run_wrk() {  # $1 connections, $2 url, $3 output file; the result in $3.res
    local c=$1 u=$2 f=$3
    run_client $((wrk_dur + 60)) "$f" \
        wrk -t1 -c"$c" -d"${wrk_dur}s" --timeout 10s --latency "$u" ||
        { cat "$f" >&2; die "wrk failed"; }
    awk '
        function ms(x,    v) {  # wrk latency ("812.00us", "2.27ms", "1.01s") in ms
            v = x + 0
            if (x ~ /us$/) return v / 1000
            if (x ~ /ms$/) return v
            if (x ~ /m$/) return v * 60000
            return v * 1000
        }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        END { if (rps == "") exit 1; print rps, bad + 0, p50, p99 }' "$f" >"$f.res" ||
        { cat "$f" >&2; die "cannot read wrk output"; }
}

run_ab() {  # $1 url, $2 output file; the result in $2.res
    local u=$1 f=$2
    run_client 600 "$f" ab -q -r -n "$ab_n" -c "$ab_c" "$u" ||
        { cat "$f" >&2; die "ab failed"; }
    awk -v len="$page_len" -v n="$ab_n" '
        /^Requests per second:/ { rps = $4 }
        /^Complete requests:/ { done = $3 }
        /^Failed requests:/ { bad += $3 }
        /^Non-2xx responses:/ { bad += $3 }
        /^Document Length:/ { dl = $3 }
        END {
            if (rps == "") exit 1
            if (dl != len) bad += 1000000000   # not the page: never a pass
            bad += n - done
            print rps, bad + 0 }' "$f" >"$f.res" ||
        { cat "$f" >&2; die "cannot read ab output"; }
}

# ------------------------------------------------------------ CPU use
# Where the CPU went during a run, as % of one core: the server's (from
# /proc/<pid>/stat), the client's (from `times`: this shell's children,
# before and after), and everything else's
# user+system+steal time on the machine (from /proc/stat): this machine may
# be shared, and a run with "other" well above 0 was disturbed. Softirq
# time (the loopback network) is counted in none of them. (now_s,
# machine_ticks, proc_ticks, children_s: bench/lib.sh.)
#
# This machine may be shared: before each run, wait until the others use
# at most QUIET_MAX % of a core (sampled over 1 s), for at most QUIET_WAIT
# seconds in the whole benchmark (wait_quiet); and redo a run (at most RETRIES more
# times) whose "other" CPU went above RETRY_OTHER %.
quiet_max=${QUIET_MAX:-10}
quiet_budget=${QUIET_WAIT:-300}
retries=${RETRIES:-2}
retry_other=${RETRY_OTHER:-15}

# ------------------------------------------------------------ measure
conns_of() { case "$1" in wrk_c100) echo 100 ;; wrk_c1000) echo 1000 ;; ab_c100) echo "$ab_c" ;; esac; }

log "servers: $servers; $reps repetition(s); wrk ${wrk_dur}s, ab -n $ab_n -c $ab_c;" \
    "server on CPU $server_cpu, client on CPU $client_cpu"
# results: lines "server point rep rps errors rss p50 p99 srv% cli% other%"
: >"$tmp/results"
for rep in $(seq "$reps"); do
    for pt in $points; do
        for s in $servers; do
            best=""; best_other=""; bad_all=0
            for attempt in $(seq $((retries + 1))); do
                c=$(conns_of "$pt")
                p=$(next_port)
                d="$tmp/run-$s-$pt-$rep-$attempt"
                wait_quiet
                start_server "$s" "$c" "$p" "$d"
                u="http://$host:$p$url_path"
                verify "$s" "$u" "$d"
                children_s; c0=$child_s; t0=$(now_s); m0=$(machine_ticks); s0=$(proc_ticks "$rss_pid")
                case "$pt" in
                wrk_*) run_wrk "$c" "$u" "$d/client.out"; read -r rps bad p50 p99 <"$d/client.out.res" ;;
                ab_*) run_ab "$u" "$d/client.out"; read -r rps bad <"$d/client.out.res"; p50=-; p99=- ;;
                esac
                t1=$(now_s); m1=$(machine_ticks); s1=$(proc_ticks "$rss_pid"); children_s; c1=$child_s
                rss=$(vmhwm "$rss_pid")
                kill -0 "$srv_pid" 2>/dev/null || die "$s died during $pt"
                stop_server
                read -r spct cpct opct < <(awk -v t0="$t0" -v t1="$t1" -v m0="$m0" -v m1="$m1" \
                    -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v hz="$clk_tck" '
                    BEGIN {
                        w = t1 - t0; srv = (s1 - s0) / hz; all = (m1 - m0) / hz; cli = c1 - c0
                        o = all - srv - cli; if (o < 0) o = 0
                        printf "%.0f %.0f %.0f\n", 100 * srv / w, 100 * cli / w, 100 * o / w }')
                log "rep $rep/$reps $pt $s: $rps req/s, errors $bad, peak RSS $rss kB," \
                    "CPU% server $spct client $cpct other $opct"
                if [ "$bad" != 0 ]; then
                    log "  errors! the client said:"
                    sed 's/^/    /' "$d/client.out" >&2
                fi
                # Of the attempts, the one least disturbed counts; errors
                # of any attempt count.
                bad_all=$((bad_all + bad))
                if [ -z "$best_other" ] || [ "$opct" -lt "$best_other" ]; then
                    best="$s $pt $rep $rps @BAD@ $rss $p50 $p99 $spct $cpct $opct"
                    best_other=$opct
                fi
                if [ "$opct" -le "$retry_other" ]; then break; fi
                if [ "$attempt" -le "$retries" ]; then log "  others used $opct% of a core: run again"; fi
            done
            echo "${best/@BAD@/$bad_all}" >>"$tmp/results"
        done
    done
done

# ------------------------------------------------------------ report
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
kernel=$(uname -r)
nginx_v=$( ("$nginx_bin" -v 2>&1 || true) | sed 's|.*nginx/||')
wrk_v=$( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $2}')
ab_v=$( (ab -V 2>&1 || true) | awk 'NR == 1 {print $5}' | tr -d ,)

awk -v json="$json" -v servers="$servers" -v points="$points" -v reps="$reps" \
    -v quick="$quick" -v wrk_dur="$wrk_dur" -v ab_n="$ab_n" -v ab_c="$ab_c" \
    -v seed_sha="${seed_sha:-}" -v nice_n="$nice_n" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -v cpu="$cpu" -v kernel="$kernel" -v nginx_v="$nginx_v" -v wrk_v="$wrk_v" -v ab_v="$ab_v" '
function median(list,    a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++)  # insertion sort, numeric
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function add(k, v) { keys[++nk] = k; val[k] = v }
{
    k = $1 "_" $2
    rps[k] = rps[k] " " $4; bad[k] += $5; rss[k] = rss[k] " " $6
    p50[k] = p50[k] " " $7; p99[k] = p99[k] " " $8
    scpu[k] = scpu[k] " " $9; ccpu[k] = ccpu[k] " " $10; ocpu[k] = ocpu[k] " " $11
    if ($4 > 0) uspr[k] = uspr[k] " " (1e6 * $9 / 100 / $4)
    if ($11 + 0 > maxother) maxother = $11 + 0
    if ($6 + 0 > peak[$1]) peak[$1] = $6 + 0
}
END {
    ns = split(servers, S, " "); np = split(points, P, " ")
    add("bench", jstr("http")); add("date", jstr(when)); add("seed_server_sha", jstr(seed_sha)); add("nice", nice_n + 0)
    add("quick", quick ? "true" : "false"); add("reps", reps)
    add("wrk_duration_s", wrk_dur); add("ab_requests", ab_n); add("ab_concurrency", ab_c)
    add("cpu", jstr(cpu)); add("kernel", jstr(kernel))
    add("nginx_version", jstr(nginx_v)); add("wrk_version", jstr(wrk_v)); add("ab_version", jstr(ab_v))
    for (i = 1; i <= ns; i++) for (j = 1; j <= np; j++) {
        k = S[i] "_" P[j]
        if (!(k in rps)) continue
        R[k] = median(rps[k]) + 0; M[k] = median(rss[k]) + 0
        n = split(rps[k], a, " "); lo = hi = a[1] + 0
        for (x = 2; x <= n; x++) { if (a[x] + 0 < lo) lo = a[x] + 0; if (a[x] + 0 > hi) hi = a[x] + 0 }
        LO[k] = lo; HI[k] = hi
        add(k "_rps", sprintf("%.0f", R[k]))
        add(k "_rps_min", sprintf("%.0f", lo)); add(k "_rps_max", sprintf("%.0f", hi))
        add(k "_errors", bad[k] + 0)
        add(k "_rss_kb", M[k])
        SC[k] = median(scpu[k]) + 0; CC[k] = median(ccpu[k]) + 0; OC[k] = median(ocpu[k]) + 0
        add(k "_server_cpu_pct", SC[k]); add(k "_client_cpu_pct", CC[k]); add(k "_other_cpu_pct", OC[k])
        # server CPU time per request: its cost, whoever is the bottleneck
        US[k] = median(uspr[k]) + 0
        add(k "_server_us_per_req", sprintf("%.1f", US[k]))
        if (P[j] ~ /^wrk/) {
            L50[k] = median(p50[k]); L99[k] = median(p99[k])
            add(k "_p50_ms", sprintf("%.3f", L50[k])); add(k "_p99_ms", sprintf("%.3f", L99[k]))
        }
    }
    for (i = 1; i <= ns; i++) add(S[i] "_peak_rss_kb", peak[S[i]] + 0)
    for (j = 1; j <= np; j++) {
        g = "grove_" P[j]
        if (!(g in R)) continue
        if (("nginx_" P[j]) in R && R["nginx_" P[j]] > 0)
            add("grove_vs_nginx_" P[j], sprintf("%.3f", R[g] / R["nginx_" P[j]]))
        if (("threaded_" P[j]) in R && R["threaded_" P[j]] > 0)
            add("grove_vs_threaded_" P[j], sprintf("%.3f", R[g] / R["threaded_" P[j]]))
    }
    # The targets: grove >= nginx with keep-alive, >= 0.9x nginx without,
    # >= threaded everywhere, and no failed request anywhere.
    allpass = 1; nt = 0
    for (j = 1; j <= np; j++) {
        g = "grove_" P[j]
        if (!(g in R)) continue
        if (("nginx_" P[j]) in R) {
            need = P[j] ~ /^ab/ ? 0.9 : 1.0
            T[++nt] = sprintf("grove >= %.1fx nginx, %s", need, P[j])
            ok[nt] = R[g] >= need * R["nginx_" P[j]]
        }
        if (("threaded_" P[j]) in R) {
            T[++nt] = sprintf("grove >= threaded, %s", P[j]); ok[nt] = R[g] >= R["threaded_" P[j]]
        }
    }
    errs = 0
    for (k in bad) errs += bad[k]
    T[++nt] = "no failed or non-2xx request, no socket error"; ok[nt] = errs == 0
    for (t = 1; t <= nt; t++) if (!ok[t]) allpass = 0
    add("targets_met", allpass ? "true" : "false")
    add("max_other_cpu_pct", maxother + 0)

    if (json) {
        printf "{"
        for (i = 1; i <= nk; i++) printf "%s\"%s\": %s", (i > 1 ? ", " : ""), keys[i], val[keys[i]]
        printf "}\n"
        exit
    }
    printf "HTTP benchmark: seed page (%s), server on one core, client on the other\n", "4568 B, text/html"
    printf "%s; kernel %s; nginx %s, wrk %s, ab %s\n", cpu, kernel, nginx_v, wrk_v, ab_v
    printf "median of %d run(s); wrk -t1 -d%ss (keep-alive); ab -n %s -c %s (no keep-alive)\n\n", reps, wrk_dur, ab_n, ab_c
    printf "%-9s %-10s %9s %15s %7s %7s %6s %11s %16s %10s\n", "server", "point", "req/s", "(min-max)", \
        "p50 ms", "p99 ms", "errors", "peak RSS kB", "CPU% srv/cli/oth", "srv us/req"
    for (j = 1; j <= np; j++) for (i = 1; i <= ns; i++) {
        k = S[i] "_" P[j]
        if (!(k in R)) continue
        a50 = "-"; a99 = "-"
        if (k in L50) { a50 = sprintf("%.2f", L50[k]); a99 = sprintf("%.2f", L99[k]) }
        cpus = sprintf("%d/%d/%d", SC[k], CC[k], OC[k])
        range = sprintf("%.0f-%.0f", LO[k], HI[k])
        printf "%-9s %-10s %9.0f %15s %7s %7s %6d %11d %16s %10.1f\n", S[i], P[j], R[k], range, a50, a99, \
            bad[k], M[k], cpus, US[k]
    }
    printf "\n"
    for (j = 1; j <= np; j++) {
        g = "grove_" P[j]
        if (!(g in R)) continue
        line = ""
        if (("nginx_" P[j]) in R && R["nginx_" P[j]] > 0) line = line sprintf("  grove/nginx %.2fx", R[g] / R["nginx_" P[j]])
        if (("threaded_" P[j]) in R && R["threaded_" P[j]] > 0) line = line sprintf("  grove/threaded %.2fx", R[g] / R["threaded_" P[j]])
        if (line != "") printf "%-10s%s\n", P[j], line
    }
    printf "\ntargets:\n"
    for (t = 1; t <= nt; t++) printf "  [%s] %s\n", ok[t] ? "ok" : "MISS", T[t]
    if (maxother > 10)
        printf "\nwarning: other processes used up to %d%% of a core during a run: the machine was not quiet (see NICE)\n", maxother
}' "$tmp/results"
exit
}
