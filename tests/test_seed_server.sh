#!/bin/bash
# The seed server (tools/seed-server), the experiment's real binary, in both
# modes, against real peers: curl for the page itself (byte for byte the
# seed page, text/html, 200; HEAD; keep-alive), ab for a load of
# short-lived connections (no failed request, no non-2xx answer), --workers
# (two processes serve), and SIGTERM (exit 0 within a second, workers and
# all). The server runs on core 0 and ab on core 1.
#
# Usage: tests/test_seed_server.sh BIN_DIR [AB_REQUESTS [AB_CONCURRENCY [STOP_MS]]]
# (20000, 1000 and 1000 by default; the sanitized build passes fewer
# requests, and more time to stop: LeakSanitizer checks each process as it
# exits.)
# Exits 77 (skipped) when curl or ab is missing.
set -u
bin=$1/seed-server
n=${2:-20000}
conc=${3:-1000}
stop_ms=${4:-1000}
top=$(cd "$(dirname "$0")/.." && pwd)
page=$top/tools/seed-server/seed-page.html
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail=0

for tool in curl ab; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh test)"; exit 77; }
done
# ab -c 1000 holds 1000 sockets, and so does the server.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
pin0= pin1=
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin0="taskset -c 0" pin1="taskset -c 1"
fi

bad() { echo "FAIL: $*"; fail=1; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# start MODE ARGS...: run the server on a free port; sets pid and port.
start() {
    local mode=$1
    shift
    $pin0 "$bin" --mode "$mode" --port 0 --host 127.0.0.1 "$@" >"$work/out" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^seed-server: ready: .* listening on 127\.0\.0\.1:\([0-9]*\)[ ,].*/\1/p' "$work/out")
        [ -n "$port" ] && return 0
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    echo "seed-server never said it was ready:"; cat "$work/out"
    exit 1
}

# stop: SIGTERM, then it must exit 0 within a second (stop_ms).
stop() {
    local t0 rc took
    t0=$(ms)
    kill -TERM $pid
    while kill -0 $pid 2>/dev/null && [ $(($(ms) - t0)) -le $stop_ms ]; do
        sleep 0.01
    done
    took=$(($(ms) - t0))
    if kill -0 $pid 2>/dev/null; then
        bad "still running ${took} ms after SIGTERM"
        kill -9 $pid
    fi
    wait $pid
    rc=$?
    [ $rc -eq 0 ] || bad "exit status $rc after SIGTERM"
    echo "  stopped by SIGTERM in ${took} ms, exit $rc"
    pid=
}

for mode in grove threaded; do
    echo "== $mode"
    start $mode --concurrency "$conc"
    url=http://127.0.0.1:$port/

    # The page, byte for byte, as text/html.
    got=$(curl -sS --max-time 10 -o "$work/body" -w '%{http_code} %{content_type}' "$url")
    [ "$got" = "200 text/html" ] || bad "$mode: GET gave '$got'"
    cmp -s "$work/body" "$page" || bad "$mode: the body is not seed-page.html"
    # Any path, any method: the same page.
    curl -sS --max-time 10 -o "$work/body2" -d 'x=1' "${url}some/where?q" &&
        cmp -s "$work/body2" "$page" || bad "$mode: POST /some/where is not the page"
    # HEAD: the length of the page, and no body.
    head=$(curl -sS --max-time 10 -I "$url" | tr -d '\r')
    echo "$head" | grep -qx "Content-Length: $(stat -c %s "$page")" ||
        bad "$mode: HEAD: $head"
    # Keep-alive: one connection for two requests.
    curl -sS -v --max-time 10 -o /dev/null -o /dev/null "$url" "$url" 2>"$work/v"
    grep -q "Re-using existing connection" "$work/v" || bad "$mode: no keep-alive: $(cat "$work/v")"

    # A load of short-lived connections (ab speaks HTTP/1.0 without
    # keep-alive: one connection per request).
    t0=$(ms)
    $pin1 ab -n "$n" -c "$conc" -r "$url" >"$work/ab" 2>&1
    took=$(($(ms) - t0))
    grep -q "^Complete requests: *$n$" "$work/ab" || bad "$mode: ab did not complete"
    grep -q "^Failed requests: *0$" "$work/ab" || bad "$mode: ab saw failed requests"
    ! grep -q "^Non-2xx responses" "$work/ab" || bad "$mode: ab saw non-2xx responses"
    echo "  ab -n $n -c $conc: $(grep -E '^(Failed requests|Requests per second)' "$work/ab" |
        tr -s ' ' | tr '\n' ' ')(${took} ms)"
    [ $fail -eq 0 ] || cat "$work/ab"
    # grove-load built against the shared library: a tool needs only the
    # public API (tests/CMakeLists.txt builds it so).
    if [ -x "$1/grove-load-shared" ]; then
        ldd "$1/grove-load-shared" | grep -q 'libgrove\.so' || bad "grove-load-shared is not linked to libgrove.so"
        $pin1 "$1/grove-load-shared" -n 1000 -c 10 -k "$url" >"$work/gl" 2>&1
        if grep -q "^Failed requests: *0$" "$work/gl" && grep -q "^Complete requests: *1000$" "$work/gl"; then
            echo "  grove-load linked to libgrove.so: 1000 requests, 0 failed"
        else
            bad "$mode: grove-load-shared:"; cat "$work/gl"
        fi
    fi
    stop
done

# Two workers under the supervisor: both hold the one listening socket the
# master opened, the connections are served (by either: one shared queue,
# the kernel does not balance it), and SIGTERM to the master stops them all.
workers_check() { # port, worker pids: both hold the listener; the connections are held
    python3 - "$1" "$2" <<'EOF'
import os, socket, sys
port, kids = int(sys.argv[1]), sys.argv[2].split()
conns = []
for _ in range(32):  # kept open: each is held by the worker that took it
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    data = b""
    while b"</html>" not in data:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:40]
def tcp_inodes(states):
    found = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(f).readlines()[1:]:
            col = line.split()
            if int(col[1].split(":")[1], 16) == port and col[3] in states:
                found.add(col[9])
    return found
listeners, established = tcp_inodes({"0A"}), tcp_inodes({"01"})
def held(pid, inodes):
    n = 0
    for fd in os.listdir("/proc/%s/fd" % pid):
        try:
            n += os.readlink("/proc/%s/fd/%s" % (pid, fd))[8:-1] in inodes
        except OSError:
            pass
    return n
counts = {k: (held(k, listeners), held(k, established)) for k in kids}
print("  per worker (listeners, connections):", counts)
ok = all(l == 1 for l, c in counts.values()) and sum(c for l, c in counts.values()) >= 32
sys.exit(0 if ok else 1)
EOF
}

for mode in grove threaded; do
    echo "== $mode --workers 2"
    start $mode --concurrency 100 --workers 2
    kids=$(pgrep -P $pid | sort)
    [ "$(echo "$kids" | wc -w)" -eq 2 ] || bad "$mode workers: children '$kids'"
    workers_check "$port" "$kids" || bad "$mode workers: not both serving"
    stop
    for k in $kids; do
        ! kill -0 "$k" 2>/dev/null || bad "$mode worker $k outlived the parent"
    done
done

# HTTPS (--tls-cert, --tls-key) with two workers: the page over TLS,
# verified by curl; a session saved by openssl s_client is resumed on
# whichever worker takes each connection (they share the ticket key).
if command -v openssl >/dev/null; then
    echo "== grove https --workers 2"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1 ||
        bad "openssl req failed"
    start grove --concurrency 100 --workers 2 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
    grep -q "(https)" "$work/out" || bad "https: not announced: $(cat "$work/out")"
    got=$(curl -sS --max-time 10 --cacert "$work/cert.pem" -o "$work/body" -w '%{http_code}' \
        "https://localhost:$port/")
    [ "$got" = 200 ] && cmp -s "$work/body" "$page" || bad "https: GET gave '$got'"
    # An HTTP/1.0 request: the server answers and closes, so s_client
    # reads to the end, the session ticket included.
    req='GET / HTTP/1.0\r\n\r\n'
    printf "$req" | timeout 10 openssl s_client -connect "127.0.0.1:$port" -ign_eof \
        -sess_out "$work/sess" >"$work/s0" 2>&1
    reused=0
    for _ in 1 2 3 4 5 6; do
        printf "$req" | timeout 10 openssl s_client -connect "127.0.0.1:$port" -ign_eof \
            -sess_in "$work/sess" 2>&1 | grep -q "^Reused, TLSv1" && reused=$((reused + 1))
    done
    [ $reused -eq 6 ] || bad "https: $reused of 6 sessions resumed"
    echo "  curl verified the page; $reused of 6 s_client sessions resumed"
    stop
    # Errors name the file.
    "$bin" --mode grove --concurrency 1 --port 0 --tls-cert "$work/cert.pem" \
        --tls-key "$work/nope.pem" >"$work/err" 2>&1 && bad "a missing key was accepted"
    grep -q "nope.pem: No such file" "$work/err" || bad "https: $(cat "$work/err")"
fi

exit $fail
