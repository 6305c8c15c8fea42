#!/bin/sh
# Drive examples/echo-server: start it on a free port, check that a few
# concurrent clients get their bytes back (one of them half-closing), then
# that SIGTERM stops it cleanly. $1: the binary.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
out=$(mktemp)
trap 'kill -9 $pid 2>/dev/null; rm -f "$out"' EXIT

"$bin" --port 0 --host 127.0.0.1 --pool 8 >"$out" 2>&1 &
pid=$!
retry port_in "$out" 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' ||
    { echo "echo-server never said it was listening:"; cat "$out"; exit 1; }

python3 - "$port" <<'EOF' || exit 1
import socket, sys, threading
port = int(sys.argv[1])
errors = []

def client(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        data = bytes((i * 7 + k) % 256 for k in range(100000))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # half-close: the echo still comes back
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        if got != data:
            errors.append("client %d: %d bytes back, want %d" % (i, len(got), len(data)))
        s.close()
    except Exception as e:
        errors.append("client %d: %r" % (i, e))

threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    print("\n".join(errors)); sys.exit(1)
EOF

terminate $pid
grep -q "^stopped$" "$out" || { echo "no 'stopped' line (exit $rc):"; cat "$out"; exit 1; }
[ $rc -eq 0 ] || { echo "exit status $rc"; cat "$out"; exit 1; }
exit 0
