# bench/lib.sh: shell functions shared by the benchmark drivers
# (bench/http/http-bench.sh, bench/experiment/experiment.sh,
# bench/load/load-bench.sh). Sourced, not
# run; bash only.
#
# The caller provides:
#   log MSG...      its own progress line (to stderr)
#   $tmp            a private scratch directory
#   $port           the next port to try (next_port advances it)
#   $nice_n         0, or a nice value for boost (NICE=-20 as root)
#   $quiet_max, $quiet_budget   for wait_quiet (% of a core, seconds)

# ------------------------------------------------------------ usage

# The comment block at the top of script $1 (after its #! line), as --help
# prints it: read from the file, so it never falls out of step with it.
print_usage() {
    awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$1"
}

# ------------------------------------------------------------ processes

stop_pid() {  # TERM, then KILL after 5 s; $1 is one of our own servers or clients
    local p=$1
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

next_port() {  # a fresh port per run: no TIME_WAIT left by the previous one
    local p=$port
    while [ -n "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]; do
        p=$((p + 1))
    done
    port=$((p + 1))
    echo "$p"
}

# NICE=-20 (as root) gives the servers and clients priority over the
# machine's other work: each runs in a session of its own (setsid), and
# that session's autogroup gets the nice value, since with autogroups a
# plain nice only counts against processes of the same session. The
# caller starts them with "setsid nice -n $nice_n ..." and then calls boost.
boost() {  # $1: a process started that way
    [ "$nice_n" != 0 ] || return 0
    # Only once it is in its own session (setsid has run), or the nice
    # would go to the caller's autogroup.
    for _ in $(seq 100); do
        [ "$(awk '{print $6}' "/proc/$1/stat" 2>/dev/null)" = "$1" ] && break
        sleep 0.01
    done
    echo "$nice_n" >"/proc/$1/autogroup" 2>/dev/null || log "cannot set the autogroup nice of $1"
    return 0
}

vmhwm() {  # peak RSS in kB of $1
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# ------------------------------------------------------------ CPU use
# Where the CPU went during a run: the server's (from /proc/<pid>/stat),
# the client's (from `times`: the caller's children, before and after),
# and everything else's user+system+steal time on the machine (from
# /proc/stat). Softirq time (the loopback network) is counted in none.
clk_tck=$(getconf CLK_TCK)
now_s() { date +%s.%N; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $9; exit}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
children_s() {  # child_s: user+sys seconds of this shell's children so far
    times >"$tmp/times.out"  # not in a subshell: it would see none
    child_s=$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        print t }' "$tmp/times.out")
}

# The machine may be shared: before a run, wait until the others use at
# most quiet_max % of a core (sampled over 1 s), for at most quiet_budget
# seconds over the whole benchmark.
busy_pct_1s() {
    local m0 m1
    m0=$(machine_ticks); sleep 1; m1=$(machine_ticks)
    echo $(((m1 - m0) * 100 / clk_tck))
}
wait_quiet() {
    local o said=0
    # Boosted (NICE), the others cannot take much from a run: no waiting.
    [ "$nice_n" = 0 ] || return 0
    while :; do
        o=$(busy_pct_1s)
        [ "$o" -le "$quiet_max" ] && return 0
        if [ "$quiet_budget" -le 0 ]; then
            [ "$said" = 1 ] || log "machine busy ($o% of a core), no quiet-wait budget left: measuring anyway"
            return 0
        fi
        [ "$said" = 1 ] || log "waiting for the machine to be quiet (others use $o% of a core)"
        said=1
        sleep 1
        quiet_budget=$((quiet_budget - 2))
    done
}

# ------------------------------------------------------------ nginx

# render_nginx_conf TEMPLATE OUT PREFIX DOCROOT HOST PORT URL_PATH CONNS:
# nginx's configuration for one run (bench/http/nginx.conf.in), every path
# under PREFIX, worker_connections = CONNS + 1024.
render_nginx_conf() {
    sed -e "s|@PREFIX@|$3|g" -e "s|@DOCROOT@|$4|g" \
        -e "s|@HOST@|$5|g" -e "s|@PORT@|$6|g" -e "s|@URL_PATH@|$7|g" \
        -e "s|@WORKER_CONNECTIONS@|$(($8 + 1024))|g" \
        -e "s|@NOFILE@|$(ulimit -n)|g" \
        "$1" >"$2"
}
