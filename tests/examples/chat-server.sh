#!/bin/sh
# Drive examples/chat-server with three clients: joins are announced,
# lines reach every other client, a departure is announced, and SIGTERM
# ends the sessions and the server cleanly. $1: the binary.
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
out=$(mktemp)
trap 'kill -9 $pid 2>/dev/null; rm -f "$out"' EXIT

"$bin" --port 0 --host 127.0.0.1 >"$out" 2>&1 &
pid=$!
retry port_in "$out" 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' ||
    { echo "chat-server did not start:"; cat "$out"; exit 1; }

python3 - "$port" <<'EOF' || exit 1
import socket, sys
port = int(sys.argv[1])

class Client:
    def __init__(self, name):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")
        self.s.sendall(name.encode() + b"\n")
    def say(self, line):
        self.s.sendall(line.encode() + b"\n")
    def expect(self, want):
        got = self.f.readline().decode()
        if got != want + "\n":
            print("expected %r, got %r" % (want, got)); sys.exit(1)

a = Client("alice"); a.expect("* welcome alice, 0 other(s) here")
b = Client("bob");   b.expect("* welcome bob, 1 other(s) here")
a.expect("* bob joined")
c = Client("carol"); c.expect("* welcome carol, 2 other(s) here")
a.expect("* carol joined"); b.expect("* carol joined")
a.say("hello everyone")
b.expect("alice: hello everyone"); c.expect("alice: hello everyone")
c.say("hi alice")
a.expect("carol: hi alice"); b.expect("carol: hi alice")
b.f.close(); b.s.close()  # the file holds the socket open too
a.expect("* bob left"); c.expect("* bob left")
EOF

terminate $pid
[ $rc -eq 0 ] || { echo "chat-server exit status $rc"; cat "$out"; exit 1; }
exit 0
