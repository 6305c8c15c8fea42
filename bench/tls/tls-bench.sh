#!/usr/bin/env bash
# bench/tls/tls-bench.sh: grove's HTTPS server (build/bin/seed-server
# --tls-cert/--tls-key) against nginx (one worker, ssl), the same ECDSA
# P-256 certificate and the same page, measured in the same run, with
# OpenSSL's own ceilings on this machine beside them. See docs/tls.md.
#
#   bench/tls/tls-bench.sh [--json] [--quick] [--reps N] [--servers "grove nginx"]
#
# Points, for every server (the client on the other core):
#   full       grove-load -c 20, a new connection and a full handshake per
#              request (no resumption, as ab): handshakes/s
#   resumed    the same with --tls-resume (session tickets): handshakes/s
#   ka_wrk     wrk -t1 -c100 keep-alive HTTPS: requests/s
#   ka_load    grove-load -k -c 100 keep-alive HTTPS: requests/s
# Each point runs REPS times (3; QUICK=1: 1) for DURATION seconds (5;
# QUICK=1: 2) against a freshly started server, and the median is kept.
# Then memory: the server's RSS growth per idle connection, with 1000
# connections held open after their handshake (TLS) or after connecting
# (plain HTTP), for grove (and nginx, for reference).
# Ceilings: `openssl speed -seconds 1 ecdsap256 ecdhx25519` on one core: a
# full TLS 1.3 handshake costs the server one P-256 signature and one
# X25519 key share at least.
#
# Environment: QUICK=1, REPS, DURATION, PORT_BASE (18600), SERVER_CPU (0),
# CLIENT_CPU (1), POINTS (a subset of the four; "none": memory only), NGINX (nginx on PATH, else /usr/sbin/nginx), IDLE_N
# (1000), BUILD=0 (do not run make first). Text to stdout, or one JSON
# object with --json; progress to stderr.
set -euo pipefail
{
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
# shellcheck source=../lib.sh
. "$root/bench/lib.sh" # stop_pid, next_port, print_usage

json=0
quick=${QUICK:-0}
servers="grove nginx"
reps=${REPS:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1 ;;
        --quick) quick=1 ;;
        --reps) reps=$2; shift ;;
        --servers) servers=$2; shift ;;
        -h|--help) print_usage "$0"; exit 0 ;;
        *) echo "tls-bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then dur=${DURATION:-2}; reps=${reps:-1}; else dur=${DURATION:-5}; reps=${reps:-3}; fi
port=${PORT_BASE:-18600}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
idle_n=${IDLE_N:-1000}
nice_n=0
nginx_bin=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
host=127.0.0.1
page=$root/tools/seed-server/seed-page.html
seed=$root/build/bin/seed-server
load=$root/build/bin/grove-load
points=${POINTS:-full resumed ka_wrk ka_load}

log() { echo "tls-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

missing=""
for tool in wrk:wrk openssl:openssl taskset:util-linux ss:iproute2 curl:curl; do
    command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
done
case " $servers " in *" nginx "*) [ -x "$nginx_bin" ] || missing="$missing nginx-light" ;; esac
[ -z "$missing" ] || die "missing Debian packages:$missing (scripts/deps.sh bench installs them)"

tmp=$(mktemp -d /tmp/grove-tls-bench.XXXXXX)
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

if [ "${BUILD:-1}" != 0 ]; then
    log "building (make)"
    make >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; die "make failed"; }
fi
[ -x "$seed" ] && [ -x "$load" ] || die "no $seed or $load: run make"

# One certificate for both servers: ECDSA P-256, as the issue asks.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1 || die "openssl req failed"
chmod 755 "$tmp"
mkdir -p "$tmp/html"
cp "$page" "$tmp/html/seed-page.html"
chmod -R a+rX "$tmp/html" "$tmp/cert.pem" "$tmp/key.pem"

# ------------------------------------------------------------ servers
srv_pid=""
start_grove() { # $1: port, $2: tls or plain
    local tls=""
    [ "$2" = tls ] && tls="--tls-cert $tmp/cert.pem --tls-key $tmp/key.pem"
    # shellcheck disable=SC2086
    taskset -c "$server_cpu" "$seed" --mode grove --concurrency 20000 --port "$1" --host $host \
        $tls >"$tmp/seed.out" 2>&1 &
    srv_pid=$!
    pids="$pids $srv_pid"
}

start_nginx() { # $1: port, $2: tls or plain
    local p=$tmp/nginx-$1 ssl="" certs=""
    mkdir -p "$p"
    if [ "$2" = tls ]; then
        ssl=" ssl"
        certs="ssl_certificate $tmp/cert.pem; ssl_certificate_key $tmp/key.pem;
               ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;"
    fi
    cat >"$p/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
master_process on;
pid $p/nginx.pid;
error_log $p/error.log warn;
events { use epoll; worker_connections 20000; multi_accept on; accept_mutex off; }
http {
    access_log off;
    server_tokens off;
    types { text/html html; }
    default_type text/html;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path $p/cb; proxy_temp_path $p/px; fastcgi_temp_path $p/fc;
    uwsgi_temp_path $p/uw; scgi_temp_path $p/sc;
    server {
        listen $host:$1$ssl backlog=4096;
        $certs
        root $tmp/html;
        location / { }
    }
}
EOF
    taskset -c "$server_cpu" "$nginx_bin" -p "$p" -c "$p/nginx.conf" -e "$p/error.log" \
        >"$p/out" 2>&1 &
    srv_pid=$!
    pids="$pids $srv_pid"
}

# The process that serves: nginx's worker, seed-server itself.
serving_pid() { # $1 server
    if [ "$1" = nginx ]; then pgrep -P "$srv_pid" | head -1; else echo "$srv_pid"; fi
}

# Start $1 ($2: tls/plain) on a fresh port and wait until it answers.
start() {
    local p scheme=https
    p=$(next_port)
    [ "$2" = plain ] && scheme=http
    "start_$1" "$p" "$2"
    url=$scheme://$host:$p/seed-page.html
    for _ in $(seq 100); do
        curl -sk --max-time 1 -o "$tmp/got" "$url" 2>/dev/null && cmp -s "$tmp/got" "$page" && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$tmp/seed.out" "$tmp"/nginx-*/error.log 2>/dev/null >&2 || true
    die "$1 does not serve $url"
}

stop() {
    stop_pid "$srv_pid"
    pids=${pids// $srv_pid/}
}

# ------------------------------------------------------------ clients
# One run of point $1 against $url: prints requests (handshakes) per
# second and the server's CPU time per request in microseconds (user +
# system of the serving process: on a shared machine the fairer figure).
run_point() {
    local out=$tmp/client.out spid t0 t1 n rps
    spid=$(serving_pid "$server")
    t0=$(awk '{print $14 + $15}' "/proc/$spid/stat")
    case "$1" in
        full) taskset -c "$client_cpu" "$load" -q -w 1 -c 20 -d "$dur" -r --insecure --json "$url" >"$out" 2>&1 ;;
        resumed) taskset -c "$client_cpu" "$load" -q -w 1 -c 20 -d "$dur" -r --insecure --tls-resume --json "$url" >"$out" 2>&1 ;;
        ka_load) taskset -c "$client_cpu" "$load" -q -w 1 -k -c 100 -d "$dur" -r --insecure --json "$url" >"$out" 2>&1 ;;
        ka_wrk) taskset -c "$client_cpu" wrk -t1 -c100 -d"${dur}s" "$url" >"$out" 2>&1 ;;
    esac
    t1=$(awk '{print $14 + $15}' "/proc/$spid/stat")
    if [ "$1" = ka_wrk ]; then
        rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
        n=$(awk '/requests in/ {print $1}' "$out")
    else
        read -r rps n < <(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
ok = r["failed"]["total"] == 0
print("%.0f %d" % (r["requests_per_sec"] if ok else 0, r["completed"]))' "$out" 2>/dev/null || echo "0 0")
    fi
    awk -v r="${rps:-0}" -v n="${n:-0}" -v d="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%s %.0f\n", r, (n > 0 ? d / hz * 1e6 / n : 0)}'
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR ? a[int((NR + 1) / 2)] : 0)}'; }

declare -A result
[ "$points" = none ] && points=""
for server in $servers; do
    for pt in $points; do
        vals="" cpus=""
        for _ in $(seq "$reps"); do
            start "$server" tls
            read -r v c < <(run_point "$pt")
            stop
            [ "$v" != 0 ] || log "$server $pt: a run failed: $(tail -3 "$tmp/client.out" | tr '\n' ' ')"
            vals="$vals $v" cpus="$cpus $c"
        done
        result[$server.$pt]=$(echo "$vals" | tr ' ' '\n' | grep . | median)
        result[$server.$pt.us]=$(echo "$cpus" | tr ' ' '\n' | grep . | median)
        log "$server $pt: ${result[$server.$pt]}/s, server ${result[$server.$pt.us]} us/request (runs:$vals; us:$cpus)"
    done
done

# ------------------------------------------------------------ memory
# Server RSS growth over idle_n connections held open: TLS ones after
# their handshake, plain ones after connecting.
idle_kb() { # $1 server, $2 tls/plain: prints KiB per connection
    local pid before after
    start "$1" "$2"
    pid=$(serving_pid "$1")
    before=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    /usr/bin/python3 - "$url" "$idle_n" "$pid" <<'EOF' >"$tmp/idle.out"
import socket, ssl, sys, time, urllib.parse
url, n, pid = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conns = []
for _ in range(n):
    s = socket.create_connection((url.hostname, url.port))
    if url.scheme == "https":
        s = ctx.wrap_socket(s, server_hostname="localhost")
    conns.append(s)
time.sleep(0.5)  # the server's side of the last ones settles
print(open("/proc/%s/status" % pid).read().split("VmRSS:")[1].split()[0])
EOF
    after=$(cat "$tmp/idle.out")
    stop
    awk -v a="$after" -v b="$before" -v n="$idle_n" 'BEGIN {printf "%.1f\n", (a - b) / n}'
}
ulimit -n 65536 2>/dev/null || true
for s in $servers; do
    result[$s.idle_tls_kb]=$(idle_kb "$s" tls)
    result[$s.idle_plain_kb]=$(idle_kb "$s" plain)
    log "$s idle connection: TLS ${result[$s.idle_tls_kb]} KiB, plain ${result[$s.idle_plain_kb]} KiB"
done

# ------------------------------------------------------------ ceilings
openssl speed -seconds 1 ecdsap256 ecdhx25519 >"$tmp/speed" 2>/dev/null || true
sign=$(awk '/256 bits ecdsa \(nistp256\)/ {print $(NF-1); exit}' "$tmp/speed")
verify=$(awk '/256 bits ecdsa \(nistp256\)/ {print $NF; exit}' "$tmp/speed")
x25519=$(awk '/253 bits ecdh \(X25519\)/ {print $NF; exit}' "$tmp/speed")

# ------------------------------------------------------------ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
for s in $servers; do for pt in full resumed ka_wrk ka_load; do
    [ -n "${result[$s.$pt]:-}" ] || result[$s.$pt]=0
    [ -n "${result[$s.$pt.us]:-}" ] || result[$s.$pt.us]=0
done; done
if [ "$json" = 1 ]; then
    printf '{"bench": "tls", "duration_s": %s, "reps": %s, "openssl_speed": {"ecdsa_p256_sign_per_s": %s, "ecdsa_p256_verify_per_s": %s, "x25519_per_s": %s}, "servers": {' \
        "$dur" "$reps" "${sign:-0}" "${verify:-0}" "${x25519:-0}"
    sep=""
    for s in $servers; do
        printf '%s"%s": {"full_handshakes_per_s": %s, "resumed_handshakes_per_s": %s, "keepalive_wrk_rps": %s, "keepalive_grove_load_rps": %s, "server_us_per_full_handshake": %s, "server_us_per_resumed_handshake": %s, "server_us_per_keepalive_request_wrk": %s, "idle_tls_kib_per_conn": %s, "idle_plain_kib_per_conn": %s}' \
            "$sep" "$s" "${result[$s.full]}" "${result[$s.resumed]}" "${result[$s.ka_wrk]}" \
            "${result[$s.ka_load]}" "${result[$s.full.us]}" "${result[$s.resumed.us]}" \
            "${result[$s.ka_wrk.us]}" "${result[$s.idle_tls_kb]}" "${result[$s.idle_plain_kb]}"
        sep=", "
    done
    echo "}}"
else
    echo "TLS (ECDSA P-256 certificate; server on CPU $server_cpu, client on CPU $client_cpu; medians of $reps x ${dur}s)"
    for s in $servers; do for pt in full resumed ka_wrk ka_load; do
        [ -n "${result[$s.$pt]:-}" ] || result[$s.$pt]=0
    done; done
    printf '%-8s %14s %14s %10s %14s %14s %16s\n' server "full hs/s" "resumed hs/s" "res/full" "ka wrk req/s" "ka g-l req/s" "idle KiB tls/plain"
    for s in $servers; do
        printf '%-8s %14s %14s %10s %14s %14s %16s\n' "$s" "${result[$s.full]}" "${result[$s.resumed]}" \
            "$(ratio "${result[$s.resumed]}" "${result[$s.full]}")" "${result[$s.ka_wrk]}" \
            "${result[$s.ka_load]}" "${result[$s.idle_tls_kb]}/${result[$s.idle_plain_kb]}"
    done
    echo "server CPU per request (us, user+system of the serving process):"
    for s in $servers; do
        printf '%-8s %14s %14s %10s %14s %14s\n' "$s" "${result[$s.full.us]}" "${result[$s.resumed.us]}" "" \
            "${result[$s.ka_wrk.us]}" "${result[$s.ka_load.us]}"
    done
    case " $servers " in *" grove "*" nginx "*|*" nginx "*" grove "*)
        echo "grove/nginx: full $(ratio "${result[grove.full]}" "${result[nginx.full]}"), resumed $(ratio "${result[grove.resumed]}" "${result[nginx.resumed]}"), keep-alive wrk $(ratio "${result[grove.ka_wrk]}" "${result[nginx.ka_wrk]}"), grove-load $(ratio "${result[grove.ka_load]}" "${result[nginx.ka_load]}")" ;;
    esac
    echo "ceilings (openssl speed, one core): ECDSA P-256 sign ${sign:-?}/s, verify ${verify:-?}/s; X25519 ${x25519:-?}/s"
fi
exit 0
}
