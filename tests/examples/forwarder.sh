#!/bin/sh
# Drive examples/forwarder in front of a Python upstream that reads until
# EOF and only then answers: the client's half-close must reach it through
# the forwarder, and the answer must come back the other way. Then SIGTERM
# stops the forwarder cleanly. $1: the binary.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
dir=$(mktemp -d)
trap 'kill -9 $up $pid 2>/dev/null; rm -rf "$dir"' EXIT

python3 - "$dir/up.port" <<'EOF' &
import socket, socketserver, sys

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                break  # the half-close came through
            data += chunk
        self.request.sendall(b"got %d bytes\n" % len(data) + data[::-1])

socketserver.ThreadingTCPServer.allow_reuse_address = True
srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
EOF
up=$!
pid=
retry test -f "$dir/up.port" || { echo "the upstream did not start"; exit 1; }
upport=$(cat "$dir/up.port")

"$bin" --listen 0 --host 127.0.0.1 --to "127.0.0.1:$upport" >"$dir/out" 2>&1 &
pid=$!
retry port_in "$dir/out" 's/^forwarding 127.0.0.1:\([0-9][0-9]*\) to .*/\1/p' ||
    { echo "forwarder did not start:"; cat "$dir/out"; exit 1; }

python3 - "$port" <<'EOF' || exit 1
import socket, sys, threading
port = int(sys.argv[1])
errors = []

def client(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        data = bytes((i * 13 + k) % 251 for k in range(50000 + i * 1000))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        want = b"got %d bytes\n" % len(data) + data[::-1]
        if got != want:
            errors.append("client %d: %r..." % (i, got[:40]))
        s.close()
    except Exception as e:
        errors.append("client %d: %r" % (i, e))

threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    print("\n".join(errors)); sys.exit(1)
EOF

terminate $pid
[ $rc -eq 0 ] || { echo "forwarder exit status $rc"; cat "$dir/out"; exit 1; }
exit 0
